import { asBytes, toBase64Url, toHex, utf8 } from "./bytes.js";

/** SHA-256 through Web Crypto (available as globalThis.crypto in Node >= 20 and browsers). */
export async function sha256(data: ArrayBuffer | ArrayBufferView): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", asBytes(data)));
}

export async function sha256Hex(data: ArrayBuffer | ArrayBufferView): Promise<string> {
  return toHex(await sha256(data));
}

/**
 * A manifest's digest as licenses carry it: base64url SHA-256 of the compact JWS's ASCII
 * bytes (surrounding whitespace removed).
 */
export async function manifestDigest(jws: string): Promise<string> {
  return toBase64Url(await sha256(utf8(jws.trim())));
}
