import { asBytes, toHex } from "./bytes.js";

/** SHA-256 through Web Crypto (available as globalThis.crypto in Node >= 20 and browsers). */
export async function sha256(data: ArrayBuffer | ArrayBufferView): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", asBytes(data)));
}

export async function sha256Hex(data: ArrayBuffer | ArrayBufferView): Promise<string> {
  return toHex(await sha256(data));
}
