import { createCipheriv, createHash, randomFillSync } from "node:crypto";
import { type ShardContext, shardAad } from "../core/shard-aad.js";
import { IV_BYTES, TAG_BYTES } from "../core/shard-cipher.js";

/**
 * The one shard sealer (docs/FORMAT.md): AES-256-GCM with node:crypto, ciphertext || 128-bit
 * tag, the shard's AAD, and a fresh 96-bit IV from the CSPRNG for every call (SP 800-38D
 * §8.2.2), so IVs never depend on which thread, file or run sealed a shard. node:crypto rather
 * than Web Crypto: no copy of the input and no fresh output buffer per call, and the ciphertext
 * is hashed while it is still in cache. The tests open what this seals with core's openShard
 * (Web Crypto).
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
