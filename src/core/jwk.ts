import { calculateJwkThumbprint, type JWK } from "jose";
import { ModelVaultError } from "./errors.js";

/** A P-256 EC JWK as ModelVault stores and pins them. */
export interface EcJwk extends JWK {
  kty: "EC";
  crv: "P-256";
  x: string;
  y: string;
  d?: string;
}

/**
 * A public JWK as apps hold it, e.g. imported from a `.json` file (whose members TypeScript
 * types as plain strings). Checked at run time with {@link checkEcJwk}.
 */
export interface JwkInput {
  kty: string;
  crv?: string;
  x?: string;
  y?: string;
  kid?: string;
  [member: string]: unknown;
}

const COORD = /^[A-Za-z0-9_-]{43}$/;

/**
 * Checks that `value` is a P-256 EC JWK, private when `needPrivate`. Point validity is left to
 * Web Crypto's importKey, which must throw DataError for a point off the curve (W3C WebCrypto).
 */
export function checkEcJwk(value: unknown, needPrivate: boolean, what = "key", use?: "sig" | "enc"): EcJwk {
  const jwk = value as Partial<EcJwk> | null;
  if (
    typeof jwk !== "object" ||
    jwk === null ||
    jwk.kty !== "EC" ||
    jwk.crv !== "P-256" ||
    typeof jwk.x !== "string" ||
    typeof jwk.y !== "string" ||
    !COORD.test(jwk.x) ||
    !COORD.test(jwk.y) ||
    (jwk.d !== undefined && (typeof jwk.d !== "string" || !COORD.test(jwk.d)))
  ) {
    throw new ModelVaultError("ERR_KEY_INVALID", `${what} is not a P-256 EC JWK`);
  }
  // keygen labels keys with `use`; a key made for one purpose is refused for the other.
  if (use !== undefined && jwk.use !== undefined && jwk.use !== use) {
    throw new ModelVaultError("ERR_KEY_INVALID", `${what} is a "${jwk.use}" key; a "${use}" key is needed`);
  }
  if (needPrivate && jwk.d === undefined) {
    throw new ModelVaultError(
      "ERR_KEY_NOT_PRIVATE",
      `${what} is a public key; the private key (with "d") is needed`,
    );
  }
  return jwk as EcJwk;
}

/** The public half of an EC JWK, with only the members RFC 7638 needs plus an optional kid. */
export function publicJwk(jwk: EcJwk): EcJwk {
  return { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y };
}

/** RFC 7638 SHA-256 thumbprint, base64url: the `kid` for publisher keys and `jkt` for devices. */
export async function jwkThumbprint(jwk: EcJwk): Promise<string> {
  return calculateJwkThumbprint(publicJwk(jwk), "sha256");
}
