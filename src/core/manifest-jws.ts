import { CompactSign, compactVerify, decodeProtectedHeader, importJWK, errors as joseErrors } from "jose";
import { fromUtf8, utf8 } from "./bytes.js";
import { ModelVaultError } from "./errors.js";
import { checkJoseHeader } from "./jose-header.js";
import { checkEcJwk, type EcJwk, jwkThumbprint } from "./jwk.js";
import { type Manifest, parseManifest } from "./manifest.js";
import { TYP } from "./token-types.js";

export const MANIFEST_TYP = TYP.manifest;
export const MANIFEST_ALG = "ES256";
/** Refused before any parsing or crypto (RFC 8725 bis / jose SECURITY.md: size limits are ours). */
export const MAX_MANIFEST_BYTES = 1024 * 1024;

/** Signs a manifest as a compact JWS with ES256 and an explicit `typ` (RFC 8725 §3.11). */
export async function signManifest(manifest: Manifest, signingKey: EcJwk): Promise<string> {
  const jwk = checkEcJwk(signingKey, true, "publisher signing key", "sig");
  const key = await importJWK({ ...jwk, alg: MANIFEST_ALG }, MANIFEST_ALG);
  return new CompactSign(utf8(JSON.stringify(parseManifest(manifest))))
    .setProtectedHeader({ alg: MANIFEST_ALG, typ: MANIFEST_TYP, kid: await jwkThumbprint(jwk) })
    .sign(key);
}

export interface VerifiedManifest {
  manifest: Manifest;
  /** RFC 7638 thumbprint of the publisher key that signed it. */
  publisherKid: string;
}

/**
 * Verifies a manifest JWS against pinned publisher keys, then parses it. Order: size, header
 * shape (alg pinned to ES256, explicit typ, no key-carrying members), key by kid among the pinned
 * keys only, signature, and only then the payload.
 */
export async function verifyManifest(
  jws: string,
  publisherKeys: readonly EcJwk[],
): Promise<VerifiedManifest> {
  if (typeof jws !== "string" || jws.length > MAX_MANIFEST_BYTES) {
    throw new ModelVaultError("ERR_MANIFEST_TOO_LARGE", `manifest exceeds ${MAX_MANIFEST_BYTES} bytes`);
  }
  const token = jws.trim();
  let header: Record<string, unknown>;
  try {
    if (token.split(".").length !== 3) throw new Error("not three segments");
    header = decodeProtectedHeader(token) as Record<string, unknown>;
  } catch {
    throw new ModelVaultError("ERR_MANIFEST_MALFORMED", "manifest is not a compact JWS");
  }
  // An embedded `jwk` is forbidden too: manifests are verified only under pinned keys.
  const problem = checkJoseHeader(header, { alg: MANIFEST_ALG, typ: MANIFEST_TYP });
  if (problem) {
    const code = {
      alg: "ERR_MANIFEST_ALG_NOT_ALLOWED",
      typ: "ERR_MANIFEST_TYP_INVALID",
      forbidden: "ERR_MANIFEST_HEADER_FORBIDDEN",
    } as const;
    throw new ModelVaultError(code[problem.check], `manifest ${problem.message}`, { member: problem.member });
  }
  let pinned: EcJwk | undefined;
  for (const candidate of publisherKeys) {
    if ((await jwkThumbprint(checkEcJwk(candidate, false, "pinned publisher key"))) === header.kid)
      pinned = candidate;
  }
  if (!pinned || typeof header.kid !== "string") {
    throw new ModelVaultError("ERR_MANIFEST_KEY_UNKNOWN", "manifest kid is not a pinned publisher key");
  }
  const key = await importJWK({ kty: "EC", crv: "P-256", x: pinned.x, y: pinned.y }, MANIFEST_ALG);
  let payload: Uint8Array;
  try {
    ({ payload } = await compactVerify(token, key, { algorithms: [MANIFEST_ALG] }));
  } catch (cause) {
    if (cause instanceof joseErrors.JWSSignatureVerificationFailed) {
      throw new ModelVaultError("ERR_MANIFEST_SIGNATURE_INVALID", undefined, {}, { cause });
    }
    throw new ModelVaultError(
      "ERR_MANIFEST_MALFORMED",
      "manifest is not a well-formed compact JWS",
      {},
      { cause },
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(fromUtf8(payload));
  } catch {
    throw new ModelVaultError("ERR_MANIFEST_MALFORMED", "manifest payload is not UTF-8 JSON");
  }
  return { manifest: parseManifest(value), publisherKid: header.kid };
}
