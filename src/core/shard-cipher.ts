/**
 * Opening shards (any runtime, Web Crypto). Sealing happens only in the packer, with node:crypto
 * in worker threads (src/pack/seal-shard-node.ts): one sealer, the one that ships, so the IV
 * tests exercise the code that makes the IVs.
 */
import { asBytes } from "./bytes.js";
import { ModelVaultError } from "./errors.js";
import { type ShardContext, shardAad } from "./shard-aad.js";

export const IV_BYTES = 12;
/** Pinned: Web Crypto would accept 32..128, NIST SP 800-38D §5.2.1.2 wants one fixed length per key. */
export const TAG_BITS = 128;
export const TAG_BYTES = TAG_BITS / 8;

/** Imports 32 raw bytes as a non-extractable decrypt-only content key. */
export async function importContentKey(
  raw: Uint8Array,
  usages: ("encrypt" | "decrypt")[] = ["decrypt"],
): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", asBytes(raw), { name: "AES-GCM", length: 256 }, false, usages);
}

/**
 * Opens one shard. Every failure (wrong key, wrong position, flipped bit) is the same
 * ERR_SHARD_DECRYPT_FAILED: GCM gives no plaintext on failure and we add no oracle.
 */
export async function openShard(
  key: CryptoKey,
  iv: Uint8Array,
  ciphertext: ArrayBufferView,
  ctx: ShardContext,
): Promise<Uint8Array<ArrayBuffer>> {
  if (iv.length !== IV_BYTES || ciphertext.byteLength !== ctx.plaintextSize + TAG_BYTES) {
    throw new ModelVaultError("ERR_SHARD_DECRYPT_FAILED", undefined, {
      location: ctx.location,
      index: ctx.shardIndex,
    });
  }
  try {
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: asBytes(iv), additionalData: shardAad(ctx), tagLength: TAG_BITS },
      key,
      asBytes(ciphertext),
    );
    return new Uint8Array(plain);
  } catch (cause) {
    throw new ModelVaultError(
      "ERR_SHARD_DECRYPT_FAILED",
      undefined,
      { location: ctx.location, index: ctx.shardIndex },
      { cause },
    );
  }
}
