import { asBytes, fromBase64Url, toBase64Url, utf8 } from "../bytes.js";

/**
 * Keys of traceable packages (docs/TRACING.md). One 32-byte trace secret per model version,
 * made by the packer, kept by the publisher (0600) and by the server (under its KEK). From it:
 * the per-slot sign vectors (marks.ts) and the key of each slot variant,
 *
 *   K(i, b) = HKDF-SHA256(ikm = secret, salt = empty, info = "modelvault/trace-slot/v1|<id>|<version>|<i>|<b>")
 *
 * A license carries K(i, x_i) for its device's codeword x only, wrapped to the device like the
 * content key (cek-wrap.ts) under info "modelvault/trace-wrap/v1|<jti>|<id>|<version>".
 */
export const TRACE_SECRET_BYTES = 32;
export const TRACE_WRAP_ALG = "ECDH-ES+HKDF-SHA256+A256KW";
/** Wrapped by AES-KW (RFC 3394): a 32-byte key becomes 40 bytes. */
export const WRAPPED_SLOT_KEY_BYTES = 40;

export async function slotKeyBytes(
  secret: Uint8Array,
  model: { id: string; version: number },
  slot: number,
  bit: 0 | 1,
): Promise<Uint8Array> {
  const [key] = await slotKeysBytes(secret, model, [bit], slot);
  return key as Uint8Array;
}

/**
 * K(first + i, bits[i]) for every i: the keys a codeword selects, from one import of the secret
 * (a license for 512 slots derives 512 keys).
 */
export async function slotKeysBytes(
  secret: Uint8Array,
  model: { id: string; version: number },
  bits: ArrayLike<number>,
  first = 0,
): Promise<Uint8Array[]> {
  const ikm = await crypto.subtle.importKey("raw", asBytes(secret), "HKDF", false, ["deriveBits"]);
  return Promise.all(
    Array.from(bits, async (bit, i) => {
      const info = asBytes(
        utf8(`modelvault/trace-slot/v1|${model.id}|${model.version}|${first + i}|${bit === 1 ? 1 : 0}`),
      );
      const out = await crypto.subtle.deriveBits(
        { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info },
        ikm,
        256,
      );
      return new Uint8Array(out);
    }),
  );
}

export function traceWrapInfo(
  licenseId: string,
  modelId: string,
  modelVersion: number,
): Uint8Array<ArrayBuffer> {
  return asBytes(utf8(`modelvault/trace-wrap/v1|${licenseId}|${modelId}|${modelVersion}`));
}

/** A codeword as base64url, bit i in byte i >> 3 at position i & 7 (least significant first). */
export function encodeBits(bits: ArrayLike<number>): string {
  const out = new Uint8Array(Math.ceil(bits.length / 8));
  for (let i = 0; i < bits.length; i++) if (bits[i]) out[i >> 3] = (out[i >> 3] as number) | (1 << (i & 7));
  return toBase64Url(out);
}

export function decodeBits(text: string, length: number): Uint8Array {
  const bytes = fromBase64Url(text);
  if (bytes.length !== Math.ceil(length / 8)) throw new RangeError("codeword has the wrong length");
  return Uint8Array.from({ length }, (_, i) => (((bytes[i >> 3] as number) >> (i & 7)) & 1) as 0 | 1);
}

/** The license's wrapped slot keys: one base64url string of 40-byte AES-KW blobs in slot order. */
export function splitWrappedKeys(text: string, slots: number): Uint8Array[] {
  const bytes = fromBase64Url(text);
  if (bytes.length !== slots * WRAPPED_SLOT_KEY_BYTES)
    throw new RangeError("wrapped slot keys have the wrong length");
  return Array.from({ length: slots }, (_, i) =>
    bytes.subarray(i * WRAPPED_SLOT_KEY_BYTES, (i + 1) * WRAPPED_SLOT_KEY_BYTES),
  );
}
