import { compactVerify, decodeProtectedHeader, importJWK } from "jose";
import { fromUtf8 } from "../../core/bytes.js";
import { ModelVaultError } from "../../core/errors.js";
import { checkJoseHeader } from "../../core/jose-header.js";
import { TYP } from "../../core/token-types.js";
import { type UsageClaims, usageReportHash, usageReportKid } from "../../core/usage-report.js";
import type { Principal, ServerContext } from "../context.js";
import { aggregatesWellFormed } from "./output-aggregates.js";

export const MAX_REPORT_BYTES = 4096;

/** A report whose signature verified under its device's key on record, with sane claims. */
export interface DecodedReport {
  token: string;
  deviceId: string;
  claims: UsageClaims;
  hash: string;
}

const isCount = (v: unknown, max = Number.MAX_SAFE_INTEGER) =>
  typeof v === "number" && Number.isSafeInteger(v) && v >= 0 && v <= max;

/** Signature (under the device key on record) before claims; then the claims' shape. */
export async function decodeReport(
  ctx: ServerContext,
  principal: Principal,
  token: string,
): Promise<DecodedReport> {
  const bad = (why: string) => new ModelVaultError("ERR_USAGE_INVALID", `usage report: ${why}`);
  if (typeof token !== "string" || token.length > MAX_REPORT_BYTES) throw bad("too large");
  let header: Record<string, unknown>;
  try {
    header = decodeProtectedHeader(token) as Record<string, unknown>;
  } catch {
    throw bad("not a compact JWS");
  }
  const problem = checkJoseHeader(header, { alg: "ES256", typ: TYP.usage });
  if (problem) throw bad(`header must be {alg: ES256, typ: modelvault-usage+jwt, kid}: ${problem.message}`);
  const kid = usageReportKid(token);
  const device = kid
    ? await ctx.db.kysely
        .selectFrom("devices")
        .select(["id", "principal_id", "signing_jwk"])
        .where("id", "=", kid)
        .executeTakeFirst()
    : undefined;
  if (!device) throw bad("unknown device");
  if (device.principal_id !== principal.id)
    throw new ModelVaultError("ERR_USAGE_WRONG_DEVICE", "device belongs to another principal");
  let payload: Uint8Array;
  try {
    ({ payload } = await compactVerify(token, await importJWK(JSON.parse(device.signing_jwk), "ES256"), {
      algorithms: ["ES256"],
    }));
  } catch {
    throw bad("signature does not verify under the device key");
  }
  let c: UsageClaims;
  try {
    c = JSON.parse(fromUtf8(payload));
  } catch {
    throw bad("payload is not JSON");
  }
  if (
    typeof c.lic !== "string" ||
    !isCount(c.seq) ||
    c.seq < 1 ||
    typeof c.prev !== "string" ||
    !isCount(c.count, 1e9) ||
    !isCount(c.from) ||
    !isCount(c.to) ||
    c.from > c.to ||
    !isCount(c.iat) ||
    (c.agg !== undefined && !aggregatesWellFormed(c.agg))
  ) {
    throw bad("claims are malformed");
  }
  return { token, deviceId: device.id, claims: c, hash: await usageReportHash(token) };
}
