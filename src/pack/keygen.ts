import { exportJWK, generateKeyPair } from "jose";
import { type EcJwk, jwkThumbprint } from "../core/jwk.js";

export type KeyPurpose = "sig" | "enc";

/**
 * Generates a P-256 key pair as JWKs: ES256 for signing manifests ("sig"), ECDH-ES+A256KW for
 * receiving content keys ("enc"). Both carry `use`, `alg` and `kid` (RFC 7638 thumbprint).
 */
export async function generateKeyPairJwk(
  purpose: KeyPurpose,
): Promise<{ privateJwk: EcJwk; publicJwk: EcJwk }> {
  const alg = purpose === "sig" ? "ES256" : "ECDH-ES+A256KW";
  const options = purpose === "sig" ? { extractable: true } : { extractable: true, crv: "P-256" };
  const { privateKey, publicKey } = await generateKeyPair(alg, options);
  const pub = (await exportJWK(publicKey)) as EcJwk;
  const kid = await jwkThumbprint(pub);
  const meta = { kid, use: purpose, alg };
  return {
    privateJwk: { ...((await exportJWK(privateKey)) as EcJwk), ...meta },
    publicJwk: { ...pub, ...meta },
  };
}
