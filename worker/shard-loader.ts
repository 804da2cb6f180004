import { fromBase64Url } from "../src/core/bytes.js";
import { mapLimit } from "../src/core/concurrency.js";
import { ModelVaultError } from "../src/core/errors.js";
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
import type { Storage } from "./storage.js";

export interface ShardLoadOptions {
  baseUrl: URL;
  storage: Storage | undefined;
  useCache: boolean;
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

/** Ciphertext of one shard, from the cache when it is there and intact, else from the network. */
async function ciphertextOf(
  file: ManifestFile,
  shard: ManifestShard,
  o: ShardLoadOptions,
  state: { cacheOn: boolean; loaded: number; writes: Promise<void>[] },
) {
  if (state.cacheOn && o.storage) {
    const cached = await o.storage.getShard(shard.sha256);
    if (cached) {
      try {
        await checkShardBytes(shard, cached, file.location);
        return { bytes: cached, fromCache: true };
      } catch {
        // A corrupt cached copy is dropped and fetched again.
        await o.storage.deleteShard(shard.sha256);
        o.progress({
          status: "warning",
          code: "ERR_SHARD_DIGEST_MISMATCH",
          message: `cached shard ${shard.index} of ${file.location} was corrupt; fetched again`,
        });
      }
    }
  }
  const bytes = await download(new URL(shardPath(shard), o.baseUrl), shardCiphertextSize(shard), o);
  await checkShardBytes(shard, bytes, file.location);
  if (state.cacheOn && o.storage) {
    // Cached in the background: decryption and session creation need not wait for IndexedDB.
    // Each shard is its own transaction, so an unfinished write leaves no partial entry.
    const storage = o.storage;
    state.writes.push(
      storage.putShard(shard.sha256, bytes).then((stored) => {
        if (stored || !state.cacheOn) return;
        state.cacheOn = false;
        o.progress({
          status: "warning",
          code: "ERR_STORAGE_UNAVAILABLE",
          message: "storage refused a shard (full?); continuing without cache",
        });
      }),
    );
  }
  return { bytes, fromCache: false };
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
): Promise<{ buffers: Map<string, Uint8Array>; cacheWrites: Promise<unknown> }> {
  const buffers = new Map(manifest.files.map((f) => [f.location, new Uint8Array(f.size)]));
  const jobs = manifest.files.flatMap((file) => file.shards.map((shard) => ({ file, shard })));
  const total = jobs.reduce((n, j) => n + shardCiphertextSize(j.shard), 0);
  const state = { cacheOn: o.useCache, loaded: 0, writes: [] as Promise<void>[] };
  let decrypted = 0;
  try {
    await mapLimit(jobs, o.concurrency, async ({ file, shard }) => {
      const { bytes, fromCache } = await ciphertextOf(file, shard, o, state);
      state.loaded += bytes.length;
      o.progress({
        status: "shard-downloaded",
        location: file.location,
        index: shard.index,
        bytes: bytes.length,
        loadedBytes: state.loaded,
        totalBytes: total,
        fromCache,
      });
      o.progress({ status: "shard-verified", location: file.location, index: shard.index });
      // Downloads start before the license arrives; decryption waits for its key.
      const plain = await openShard(
        await contentKey,
        fromBase64Url(shard.iv),
        bytes,
        shardContext(manifest, file, shard.index),
      );
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
  return { buffers, cacheWrites: Promise.all(state.writes) };
}
