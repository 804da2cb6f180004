import { createCipheriv, createHash, randomFillSync } from "node:crypto";
import { type ShardContext, shardAad } from "../core/shard-aad.js";
import { IV_BYTES, TAG_BYTES } from "../core/shard-cipher.js";

/**
 * node:crypto twin of core's sealShard, for the packer's hot loop: the same bytes on disk
 * (ciphertext || 128-bit tag, same AAD), without Web Crypto's copy of the input and its fresh
 * output buffer per call, and hashing the ciphertext while it is still in cache.
 * The round-trip tests open what this seals with core's openShard (Web Crypto).
 */
export function sealShardNode(
  rawKey: Uint8Array,
  plaintext: Uint8Array,
  ctx: ShardContext,
): { iv: Uint8Array; parts: [Uint8Array, Uint8Array]; sha256: string } {
  const iv = randomFillSync(new Uint8Array(IV_BYTES));
  const cipher = createCipheriv("aes-256-gcm", rawKey, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(shardAad(ctx));
  const body = cipher.update(plaintext);
  const rest = cipher.final();
  const ciphertext = rest.length === 0 ? body : Buffer.concat([body, rest]);
  const tag = cipher.getAuthTag();
  const sha256 = createHash("sha256").update(ciphertext).update(tag).digest("hex");
  return { iv, parts: [ciphertext, tag], sha256 };
}
