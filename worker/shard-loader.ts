import { fromBase64Url } from "../src/core/bytes.js";
import { mapLimit } from "../src/core/concurrency.js";
import { isModelVaultError, ModelVaultError } from "../src/core/errors.js";
import {
  type Manifest,
  type ManifestFile,
  type ManifestShard,
  shardCiphertextSize,
  shardContext,
  shardPath,
} from "../src/core/manifest.js";
import type { LoadProgress } from "../src/core/progress.js";
import { checkShardBytes } from "../src/core/shard-check.js";
import { openShard } from "../src/core/shard-cipher.js";
import { watchDownload } from "./download-watchdog.js";
import { type RetryOptions, withRetry } from "./retry.js";
import type { ShardCache } from "./shard-cache.js";

export interface ShardLoadOptions {
  baseUrl: URL;
  /** The ciphertext cache, when this load uses one. */
  cache: ShardCache | undefined;
  concurrency: number;
  retry: RetryOptions;
  signal?: AbortSignal;
  progress: (p: LoadProgress) => void;
}

/**
 * Downloads one shard, resuming after a dropped connection with `Range` + `If-Range` (RFC 9110
 * §14): a 206 continues where the last attempt stopped, a 200 (the file changed) starts over.
 * Reads into a buffer of exactly the manifest's size (its digest check refuses a short one);
 * a byte beyond it refuses the response without buffering more.
 */
async function download(url: URL, expected: number, o: ShardLoadOptions): Promise<Uint8Array> {
  const buffer = new Uint8Array(expected);
  let received = 0;
  let etag: string | null = null;
  await withRetry(
    async () => {
      const headers: Record<string, string> = {};
      if (received > 0 && etag) {
        headers.range = `bytes=${received}-`;
        headers["if-range"] = etag;
      } else {
        received = 0;
      }
      const watchdog = watchDownload(`shard ${url.pathname}`, o.retry, o.signal);
      try {
        const res = await fetch(url, { headers, signal: watchdog.signal });
        if (res.status === 404)
          throw new ModelVaultError("ERR_SHARD_MISSING", `shard ${url.pathname} not found`);
        if (!res.ok) throw new ModelVaultError("ERR_NETWORK", `shard ${url.pathname}: HTTP ${res.status}`);
        if (res.status !== 206) received = 0;
        etag = res.headers.get("etag");
        const reader = res.body?.getReader();
        if (!reader) throw new ModelVaultError("ERR_NETWORK", "no response body");
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          watchdog.received(value.length);
          if (value.length > expected - received) {
            await reader.cancel();
            throw new ModelVaultError(
              "ERR_SHARD_SIZE_MISMATCH",
              `shard ${url.pathname} is longer than the manifest says (${expected} bytes)`,
            );
          }
          buffer.set(value, received);
          received += value.length;
        }
      } catch (e) {
        // What arrived before a stall stays: the next attempt resumes after it (Range).
        throw watchdog.failure(e);
      } finally {
        watchdog.dispose();
      }
    },
    o.retry,
    o.signal,
  );
  return received === expected ? buffer : buffer.subarray(0, received);
}

/** Ciphertext of one shard from the network, checked against the manifest's digest, then cached. */
async function fetchVerified(file: ManifestFile, shard: ManifestShard, o: ShardLoadOptions) {
  const bytes = await download(new URL(shardPath(shard), o.baseUrl), shardCiphertextSize(shard), o);
  await checkShardBytes(shard, bytes, file.location);
  // Cached in the background: decryption and session creation never wait for IndexedDB.
  o.cache?.put(shard.sha256, bytes);
  return bytes;
}

/**
 * Ciphertext and plaintext of one shard. A cached shard is not hashed again: it was hashed
 * before it was cached, and whoever alters it since cannot forge its AES-GCM tag without the
 * content key (docs/FORMAT.md, "Integrity of cached shards"). One that fails to decrypt is
 * dropped and fetched again.
 */
async function openOne(
  manifest: Manifest,
  file: ManifestFile,
  shard: ManifestShard,
  contentKey: Promise<CryptoKey>,
  o: ShardLoadOptions,
  downloaded: (bytes: number, fromCache: boolean) => void,
): Promise<Uint8Array> {
  const open = async (bytes: Uint8Array) =>
    openShard(await contentKey, fromBase64Url(shard.iv), bytes, shardContext(manifest, file, shard.index));
  const cached = await o.cache?.get(shard.sha256);
  if (cached && cached.length === shardCiphertextSize(shard)) {
    downloaded(cached.length, true);
    try {
      return await open(cached);
    } catch (e) {
      if (!isModelVaultError(e, "ERR_SHARD_DECRYPT_FAILED")) throw e;
      await o.cache?.drop(shard.sha256);
      o.progress({
        status: "warning",
        code: "ERR_SHARD_DECRYPT_FAILED",
        message: `cached shard ${shard.index} of ${file.location} was corrupt; fetched again`,
      });
    }
  } else if (cached) {
    await o.cache?.drop(shard.sha256);
  }
  const bytes = await fetchVerified(file, shard, o);
  downloaded(bytes.length, false);
  // Downloads start before the license arrives; decryption waits for its key.
  return open(bytes);
}

/**
 * Fetches, verifies and decrypts every shard of every file with bounded parallelism (fetching
 * while the content key is still on its way), each
 * file into one buffer allocated once at its final size. Plaintext exists only here and in
 * the session; the caller zeroes these buffers once the session holds the model.
 */
export async function loadShards(
  manifest: Manifest,
  contentKey: Promise<CryptoKey>,
  o: ShardLoadOptions,
): Promise<Map<string, Uint8Array>> {
  const buffers = new Map(manifest.files.map((f) => [f.location, new Uint8Array(f.size)]));
  const jobs = manifest.files.flatMap((file) => file.shards.map((shard) => ({ file, shard })));
  const total = jobs.reduce((n, j) => n + shardCiphertextSize(j.shard), 0);
  let loaded = 0;
  let decrypted = 0;
  try {
    await mapLimit(jobs, o.concurrency, async ({ file, shard }) => {
      const plain = await openOne(manifest, file, shard, contentKey, o, (bytes, fromCache) => {
        loaded += bytes;
        o.progress({
          status: "shard-downloaded",
          location: file.location,
          index: shard.index,
          bytes,
          loadedBytes: loaded,
          totalBytes: total,
          fromCache,
        });
      });
      o.progress({ status: "shard-verified", location: file.location, index: shard.index });
      (buffers.get(file.location) as Uint8Array).set(plain, shard.index * manifest.shardSize);
      plain.fill(0);
      decrypted += plain.length;
      o.progress({
        status: "shard-decrypted",
        location: file.location,
        index: shard.index,
        decryptedBytes: decrypted,
        totalBytes: manifest.size,
      });
    });
  } catch (e) {
    // Nothing partial is ever handed on: wipe what was decrypted so far.
    for (const b of buffers.values()) b.fill(0);
    throw e;
  }
  return buffers;
}
