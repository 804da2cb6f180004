import { SignJWT } from "jose";
import { toBase64Url } from "./bytes.js";
import type { EcJwk } from "./jwk.js";
import { TYP } from "./token-types.js";

export interface DpopProofInput {
  htm: string;
  htu: string;
  nonce?: string;
  /** Thumbprint of the device's ECDH key: binds it to the same proof (ModelVault extension). */
  akt: string;
  iat?: number;
  jti?: string;
}

/**
 * Creates a DPoP proof (RFC 9449 §4.2) signed by the device's non-extractable ES256 key.
 * `jti` carries 128 random bits (the RFC asks for at least 96).
 */
export async function createDpopProof(
  signingKey: CryptoKey,
  publicJwk: EcJwk,
  p: DpopProofInput,
): Promise<string> {
  const claims: Record<string, unknown> = {
    htm: p.htm,
    htu: p.htu,
    akt: p.akt,
    jti: p.jti ?? toBase64Url(crypto.getRandomValues(new Uint8Array(16))),
    iat: p.iat ?? Math.floor(Date.now() / 1000),
  };
  if (p.nonce !== undefined) claims.nonce = p.nonce;
  return new SignJWT(claims)
    .setProtectedHeader({
      alg: "ES256",
      typ: TYP.dpop,
      jwk: { kty: "EC", crv: "P-256", x: publicJwk.x, y: publicJwk.y },
    })
    .sign(signingKey);
}
