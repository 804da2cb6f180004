/**
 * Ways to spell one JWS differently without its key (jose SECURITY.md, "token string identity"):
 * a verifier accepts all of them, so whatever remembers a token (replay caches, report chains,
 * revocation) must key on decoded values, never on the token text.
 */
import { fromBase64Url, toBase64Url, utf8 } from "../../src/core/bytes.js";

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/** The order of P-256 (SEC 2 §2.4.2). */
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

/**
 * The same token with a non-canonical signature segment: a 64-byte ES256 signature is 86
 * base64url characters, whose last one carries 4 unused bits; setting one decodes to the same
 * bytes (RFC 4648 §3.5 lets decoders ignore them, and atob does).
 */
export function reencodeSignature(token: string): string {
  const [h, p, s = ""] = token.split(".");
  const last = ALPHABET.indexOf(s.at(-1) ?? "A");
  return `${h}.${p}.${s.slice(0, -1)}${ALPHABET[last ^ 1]}`;
}

/** The same token with its ECDSA signature (r, s) replaced by (r, n − s): also valid (no low-S rule). */
export function malleateEs256(token: string): string {
  const [h, p, sig = ""] = token.split(".");
  const bytes = fromBase64Url(sig);
  const s = BigInt(`0x${Buffer.from(bytes.subarray(32)).toString("hex")}`);
  const flipped = Buffer.from((P256_N - s).toString(16).padStart(64, "0"), "hex");
  return `${h}.${p}.${toBase64Url(new Uint8Array(Buffer.concat([bytes.subarray(0, 32), flipped])))}`;
}

/**
 * A compact ES256 JWS over exactly these header and payload texts, signed with Web Crypto (whose
 * ECDSA output is the r || s form JWS uses): lets a test send headers jose would never write,
 * such as duplicate members, with a signature that verifies.
 */
export async function signRaw(key: CryptoKey, headerJson: string, payloadJson: string): Promise<string> {
  const input = `${toBase64Url(utf8(headerJson))}.${toBase64Url(utf8(payloadJson))}`;
  const sig = await crypto.subtle.sign(
    { name: "ECDSA", hash: "SHA-256" },
    key,
    utf8(input) as Uint8Array<ArrayBuffer>,
  );
  return `${input}.${toBase64Url(new Uint8Array(sig))}`;
}

/** base64url of a JSON value. */
export const b64json = (v: unknown) => toBase64Url(utf8(JSON.stringify(v)));
