import { describe, expect, it } from "vitest";
import { ClientAddresses } from "../../src/server/http/client-address.js";

describe("client address", () => {
  it("is the socket's peer when no proxy is trusted, whatever X-Forwarded-For says", () => {
    const warnings: string[] = [];
    const a = new ClientAddresses([], (from) => warnings.push(from));
    expect(a.of("::ffff:192.0.2.7", "203.0.113.1")).toBe("192.0.2.7");
    expect(a.of("192.0.2.7", "203.0.113.2")).toBe("192.0.2.7");
    expect(warnings).toEqual(["192.0.2.7"]);
  });

  it("walks X-Forwarded-For from the right through trusted proxies only", () => {
    const a = new ClientAddresses(["10.0.0.0/8", "127.0.0.1", "::1"]);
    expect(a.of("127.0.0.1", "203.0.113.9")).toBe("203.0.113.9");
    expect(a.of("127.0.0.1", "198.51.100.1, 203.0.113.9, 10.1.2.3")).toBe("203.0.113.9");
    expect(a.of("::1", "2001:db8::5")).toBe("2001:db8::5");
    // A peer that is not a trusted proxy is the client, even if it sends the header.
    expect(a.of("192.0.2.50", "203.0.113.9")).toBe("192.0.2.50");
    // Garbage where a proxy's hop should be: stop at the last address a proxy vouched for.
    expect(a.of("127.0.0.1", "203.0.113.9, not-an-ip")).toBe("127.0.0.1");
    // Only proxies all the way: the leftmost hop.
    expect(a.of("127.0.0.1", "10.0.0.1, 10.0.0.2")).toBe("10.0.0.1");
    expect(a.of(undefined, undefined)).toBe("unknown");
  });

  it("refuses a malformed trusted-proxy entry", () => {
    expect(() => new ClientAddresses(["10.0.0.0/abc"])).toThrow(/not an IP address or CIDR range/);
    expect(() => new ClientAddresses(["proxy.example"])).toThrow(/not an IP address/);
  });
});
