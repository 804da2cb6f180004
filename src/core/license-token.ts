import {
  createLocalJWKSet,
  decodeProtectedHeader,
  type JSONWebKeySet,
  errors as joseErrors,
  jwtVerify,
} from "jose";
import { ModelVaultError } from "./errors.js";
import { checkJoseHeader } from "./jose-header.js";
import type { EcJwk } from "./jwk.js";
import { TYP } from "./token-types.js";

export const LICENSE_ALG = "ES256";
export const LICENSE_AUDIENCE = "modelvault-runtime";
// A traceable model's license carries up to 512 wrapped slot keys (docs/TRACING.md): ~37 KiB.
export const MAX_TOKEN_BYTES = 64 * 1024;

/** Claims of a license JWT (docs/PROTOCOL.md, "License"). Times are seconds since the epoch. */
export interface LicenseClaims {
  iss: string;
  sub: string;
  aud: string;
  jti: string;
  iat: number;
  nbf: number;
  exp: number;
  /** RFC 9449 §6.1 / RFC 7800: thumbprint of the device signing key the license is bound to. */
  cnf: { jkt: string };
  /** Thumbprint of the device's ECDH key the content key was wrapped to. */
  akt: string;
  mdl: { id: string; version: number; digest: string };
  /** Space-separated: "infer", "offline". */
  scope: string;
  /** Inferences this license allows before renewal, reserved from the entitlement's quota. */
  quota: { allowance: number; periodEnd: number };
  /** Optional: the license may be used offline (after exp) until this time. */
  offline_until?: number;
  /** The content key wrapped to the device's ECDH key (cek-wrap.ts). */
  cek: { alg: string; kid: string; epk: EcJwk; wrapped: string };
  /**
   * Traceable models only (docs/TRACING.md): the device's codeword (`bits`, one per slot) and
   * the key of the selected variant of every slot, wrapped to the device's ECDH key
   * (slot-keys.ts; `keys` is 40 bytes per slot, base64url).
   */
  trc?: { alg: string; slots: number; bits: string; epk: EcJwk; keys: string };
  ent: string;
}

const REQUIRED = [
  "iss",
  "sub",
  "aud",
  "jti",
  "iat",
  "nbf",
  "exp",
  "cnf",
  "akt",
  "mdl",
  "scope",
  "quota",
  "cek",
  "ent",
];

export interface LicenseVerifyOptions {
  jwks: JSONWebKeySet;
  issuer: string;
  /** Clock to check exp/nbf against; defaults to now. */
  currentDate?: Date;
  /** When given, the license must be bound to this device key thumbprint. */
  deviceJkt?: string;
  /** Seconds of clock skew allowed on exp/nbf/iat (default 0). */
  clockToleranceSeconds?: number;
}

/**
 * Verifies a license JWT: size, header (ES256 only, typ license+jwt, no key-carrying members),
 * signature under the issuer's JWKS, then iss, aud, exp/nbf (no tolerance) and every claim the
 * runtime relies on. The signature is checked before any claim, so a forged expired token
 * reports "invalid", never "expired".
 */
export async function verifyLicenseToken(token: string, o: LicenseVerifyOptions): Promise<LicenseClaims> {
  if (typeof token !== "string" || token.length > MAX_TOKEN_BYTES) {
    throw new ModelVaultError("ERR_LICENSE_INVALID", "license token missing or too large");
  }
  let header: Record<string, unknown>;
  try {
    header = decodeProtectedHeader(token) as Record<string, unknown>;
  } catch {
    throw new ModelVaultError("ERR_LICENSE_INVALID", "license is not a compact JWS");
  }
  const problem = checkJoseHeader(header, { alg: LICENSE_ALG, typ: TYP.license });
  if (problem || typeof header.kid !== "string") {
    throw new ModelVaultError(
      "ERR_LICENSE_INVALID",
      `license header is not {alg: ES256, typ: license+jwt, kid}: ${problem?.message ?? "kid missing"}`,
    );
  }
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, createLocalJWKSet(o.jwks), {
      algorithms: [LICENSE_ALG],
      typ: TYP.license,
      issuer: o.issuer,
      audience: LICENSE_AUDIENCE,
      requiredClaims: REQUIRED,
      ...(o.currentDate ? { currentDate: o.currentDate } : {}),
      clockTolerance: o.clockToleranceSeconds ?? 0,
    }));
  } catch (cause) {
    if (cause instanceof joseErrors.JWTExpired)
      throw new ModelVaultError("ERR_LICENSE_EXPIRED", undefined, {}, { cause });
    throw new ModelVaultError("ERR_LICENSE_INVALID", "license does not verify", {}, { cause });
  }
  const claims = payload as unknown as LicenseClaims;
  const wellFormed =
    [claims.exp, claims.iat, claims.nbf].every((t) => Number.isSafeInteger(t) && t >= 0) &&
    typeof claims.cnf?.jkt === "string" &&
    typeof claims.mdl?.id === "string" &&
    Number.isSafeInteger(claims.mdl?.version) &&
    Number.isSafeInteger(claims.quota?.allowance) &&
    typeof claims.cek?.wrapped === "string" &&
    typeof claims.cek?.epk?.x === "string" &&
    (claims.offline_until === undefined || Number.isSafeInteger(claims.offline_until)) &&
    (claims.trc === undefined ||
      (Number.isSafeInteger(claims.trc.slots) &&
        typeof claims.trc.bits === "string" &&
        typeof claims.trc.keys === "string" &&
        typeof claims.trc.epk?.x === "string"));
  if (!wellFormed) throw new ModelVaultError("ERR_LICENSE_INVALID", "license claims are malformed");
  if (o.deviceJkt !== undefined && claims.cnf.jkt !== o.deviceJkt) {
    throw new ModelVaultError("ERR_LICENSE_WRONG_DEVICE");
  }
  return claims;
}
