import { decodeProtectedHeader } from "jose";
import { concatBytes, fromBase64Url, toBase64Url, utf8 } from "./bytes.js";
import { sha256 } from "./digest.js";
import type { OutputAggregates } from "./monitoring.js";
import { TYP } from "./token-types.js";

/** Claims of one usage report (docs/PROTOCOL.md, "Usage reports"). Times in seconds. */
export interface UsageClaims {
  /** License the counts were made under. */
  lic: string;
  /** 1, 2, 3 … per device, never reused. */
  seq: number;
  /** Hash of the previous report of this device (or the device's genesis value for seq 1). */
  prev: string;
  /** Inferences run in [from, to]. */
  count: number;
  from: number;
  to: number;
  iat: number;
  /**
   * Output aggregates (docs/FORMAT.md, "Monitoring policy"): counts per bin of each monitored
   * output, aligned with the manifest's `monitoring.outputs`, `[]` for one not reported yet.
   * Only in reports whose model declares monitoring, once an output has `minCount` rows.
   */
  agg?: OutputAggregates;
}

/** The value `prev` holds for a device's first report: anchored to the device, not guessable across devices. */
export async function usageGenesis(deviceJkt: string): Promise<string> {
  return toBase64Url(await sha256(utf8(`modelvault/usage-genesis/v1|${deviceJkt}`)));
}

/**
 * A report's chain hash: SHA-256 over its decoded header and payload. Decoded bytes, not the
 * token string, so a re-encoded token (other base64url spelling, or a malleated ECDSA
 * signature) is still the same report (jose SECURITY.md, "token string identity").
 */
export async function usageReportHash(token: string): Promise<string> {
  const [h, p] = token.split(".");
  return toBase64Url(
    await sha256(concatBytes([fromBase64Url(h ?? ""), new Uint8Array([0]), fromBase64Url(p ?? "")])),
  );
}

/** Signs a usage report with the device's ES256 key; `kid` is the device key thumbprint. */
export async function signUsageReport(
  signingKey: CryptoKey,
  deviceJkt: string,
  claims: UsageClaims,
): Promise<string> {
  const header = toBase64Url(utf8(JSON.stringify({ alg: "ES256", typ: TYP.usage, kid: deviceJkt })));
  const payload = toBase64Url(utf8(JSON.stringify(claims)));
  const signature = await crypto.subtle.sign(
    { name: "ECDSA", hash: "SHA-256" },
    signingKey,
    utf8(`${header}.${payload}`) as Uint8Array<ArrayBuffer>,
  );
  return `${header}.${payload}.${toBase64Url(new Uint8Array(signature))}`;
}

/** The device thumbprint a report claims to come from (unverified; used to look up the key). */
export function usageReportKid(token: string): string | undefined {
  try {
    const kid = decodeProtectedHeader(token).kid;
    return typeof kid === "string" ? kid : undefined;
  } catch {
    return undefined;
  }
}
