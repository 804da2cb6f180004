import { BlockList, isIP } from "node:net";

/**
 * The address of the client behind a request, as far as it can be trusted (ASVS 4.1.3): the
 * socket's peer, unless that peer is one of the configured proxies, in which case the
 * `X-Forwarded-For` hops are walked from the right, each appended by a trusted proxy, until the
 * first address that is not a trusted proxy. Hops a client wrote itself (the left part) are
 * never reached, so a client cannot choose its address by sending the header.
 */
export class ClientAddresses {
  private readonly proxies: BlockList | undefined;
  private warned = false;

  /**
   * `trusted`: proxy addresses or CIDR ranges ("10.0.0.0/8", "::1"); throws on a malformed entry.
   * `onIgnoredHeader` is called once, the first time `X-Forwarded-For` arrives with no proxy
   * trusted: behind an unconfigured proxy every client shares the proxy's address.
   */
  constructor(
    trusted: readonly string[],
    private readonly onIgnoredHeader: (from: string) => void = () => {},
  ) {
    if (trusted.length === 0) return;
    const list = new BlockList();
    for (const entry of trusted) {
      const [address = "", prefix] = entry.trim().split("/");
      const family = isIP(address);
      if (family === 0 || (prefix !== undefined && !/^\d{1,3}$/.test(prefix)))
        throw new Error(`trusted proxy "${entry}" is not an IP address or CIDR range`);
      const type = family === 4 ? "ipv4" : "ipv6";
      if (prefix === undefined) list.addAddress(address, type);
      else list.addSubnet(address, Number(prefix), type);
    }
    this.proxies = list;
  }

  of(socketAddress: string | undefined, forwardedFor: string | undefined): string {
    let address = normalize(socketAddress ?? "") || "unknown";
    if (!forwardedFor) return address;
    if (!this.proxies) {
      if (!this.warned) this.onIgnoredHeader(address);
      this.warned = true;
      return address;
    }
    const hops = forwardedFor.split(",").map((h) => normalize(h.trim()));
    while (this.isProxy(address)) {
      const hop = hops.pop();
      if (hop === undefined || isIP(hop) === 0) break;
      address = hop;
    }
    return address;
  }

  private isProxy(address: string): boolean {
    const family = isIP(address);
    return family !== 0 && (this.proxies?.check(address, family === 4 ? "ipv4" : "ipv6") ?? false);
  }
}

/** `::ffff:192.0.2.1` (IPv4 on a dual-stack socket) is 192.0.2.1. */
function normalize(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped ? (mapped[1] as string) : address;
}
