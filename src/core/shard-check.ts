import { sha256Hex } from "./digest.js";
import { ModelVaultError } from "./errors.js";
import { type ManifestShard, shardCiphertextSize } from "./manifest.js";

/**
 * Checks downloaded shard ciphertext against its manifest entry: length first (cheap, and it
 * names truncation precisely), then SHA-256. Runs before any decryption.
 */
export async function checkShardBytes(
  shard: ManifestShard,
  ciphertext: Uint8Array,
  location: string,
): Promise<void> {
  const data = { location, index: shard.index };
  if (ciphertext.byteLength !== shardCiphertextSize(shard)) {
    throw new ModelVaultError(
      "ERR_SHARD_SIZE_MISMATCH",
      `shard ${shard.index} of ${location} is ${ciphertext.byteLength} bytes, expected ${shardCiphertextSize(shard)}`,
      data,
    );
  }
  if ((await sha256Hex(ciphertext)) !== shard.sha256) {
    throw new ModelVaultError(
      "ERR_SHARD_DIGEST_MISMATCH",
      `shard ${shard.index} of ${location} has the wrong SHA-256`,
      data,
    );
  }
}
