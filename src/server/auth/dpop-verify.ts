import { createHash } from "node:crypto";
import { decodeProtectedHeader, EmbeddedJWK, jwtVerify } from "jose";
import type { Kysely } from "kysely";
import { ModelVaultError } from "../../core/errors.js";
import { checkJoseHeader } from "../../core/jose-header.js";
import { type EcJwk, jwkThumbprint } from "../../core/jwk.js";
import { TYP } from "../../core/token-types.js";
import type { Database } from "../db/schema.js";
import type { DpopNonces } from "./dpop-nonce.js";

export const MAX_DPOP_BYTES = 8 * 1024;
const MAX_JTI = 128;

export interface VerifiedDpop {
  /** RFC 7638 thumbprint of the proof key: the device id. */
  jkt: string;
  jwk: EcJwk;
  /** Thumbprint of the device's ECDH key, as the proof claims it. */
  akt: string;
}

const invalid = (reason: string) =>
  new ModelVaultError("ERR_DPOP_INVALID", `invalid DPoP proof: ${reason}`, { reason });

/**
 * Normalises an `htu` for comparison (RFC 9449 §4.3 (9), RFC 3986 §6.2.2-6.2.3): scheme and
 * host lower-cased, default port dropped, query and fragment ignored; path compared as is.
 */
export function normalizeHtu(value: string): string | undefined {
  try {
    const url = new URL(value);
    if (url.protocol !== "https:" && url.protocol !== "http:") return undefined;
    return `${url.protocol}//${url.host}${url.pathname}`;
  } catch {
    return undefined;
  }
}

/**
 * Verifies the DPoP header of a request against RFC 9449 §4.3: one proof, typ dpop+jwt, ES256,
 * an embedded public P-256 jwk, a valid signature, htm and htu matching, iat within the
 * window, the server's nonce, and a jti never seen for this key. The replay entry is keyed on
 * SHA-256(jkt | jti), never the raw token, and written last, so malformed proofs cannot fill it.
 */
export async function verifyDpop(
  headerValue: string | undefined,
  expected: { method: string; url: string },
  deps: { db: Kysely<Database>; nonces: DpopNonces; now: number; windowSeconds: number },
): Promise<VerifiedDpop> {
  if (!headerValue) throw invalid("missing DPoP header");
  if (headerValue.length > MAX_DPOP_BYTES)
    throw new ModelVaultError("ERR_HEADERS_TOO_LARGE", "DPoP header too large");
  // Node joins repeated headers with ", ": a JWT never contains a comma or whitespace.
  if (/[,\s]/.test(headerValue)) throw invalid("more than one DPoP proof");
  let header: Record<string, unknown>;
  try {
    header = decodeProtectedHeader(headerValue) as Record<string, unknown>;
  } catch {
    throw invalid("not a compact JWS");
  }
  const problem = checkJoseHeader(header, { alg: "ES256", typ: TYP.dpop, allowJwk: true });
  if (problem) throw invalid(problem.message);
  const jwk = header.jwk as Partial<EcJwk> | undefined;
  if (
    jwk?.kty !== "EC" ||
    jwk.crv !== "P-256" ||
    "d" in jwk ||
    typeof jwk.x !== "string" ||
    typeof jwk.y !== "string"
  ) {
    throw invalid("jwk must be a public P-256 key");
  }
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(headerValue, EmbeddedJWK, { algorithms: ["ES256"], typ: TYP.dpop }));
  } catch {
    throw invalid("signature does not verify");
  }
  const { jti, htm, htu, iat, akt, nonce } = payload;
  if (typeof jti !== "string" || jti.length < 16 || jti.length > MAX_JTI)
    throw invalid("jti must be 16-128 characters");
  if (htm !== expected.method) throw invalid("htm does not match the request method");
  if (typeof htu !== "string" || normalizeHtu(htu) !== normalizeHtu(expected.url))
    throw invalid("htu does not match the request URL");
  if (typeof iat !== "number" || !Number.isInteger(iat) || Math.abs(iat - deps.now) > deps.windowSeconds) {
    throw invalid("iat outside the acceptance window");
  }
  if (typeof akt !== "string" || !/^[A-Za-z0-9_-]{43}$/.test(akt))
    throw invalid("akt (agreement key thumbprint) missing");
  if (!deps.nonces.isValid(nonce)) {
    throw new ModelVaultError(
      "ERR_DPOP_NONCE_REQUIRED",
      nonce === undefined ? "DPoP nonce required" : "DPoP nonce is stale or unknown",
    );
  }
  const publicJwk: EcJwk = { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y };
  const jkt = await jwkThumbprint(publicJwk);
  const key = createHash("sha256").update(`${jkt}|${jti}`).digest("base64url");
  const inserted = await deps.db
    .insertInto("dpop_replay")
    .values({ key, expires_at: deps.now + 2 * deps.windowSeconds + 1 })
    .onConflict((oc) => oc.column("key").doNothing())
    .executeTakeFirst();
  if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0) throw new ModelVaultError("ERR_DPOP_REPLAY");
  return { jkt, jwk: publicJwk, akt };
}
