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
import type { ShardContext } from "../src/core/shard-aad.js";
import { checkShardBytes } from "../src/core/shard-check.js";
import { openShard, TAG_BYTES } from "../src/core/shard-cipher.js";
import { type TraceSection, type TraceSlot, variantContext } from "../src/core/tracing/trace-manifest.js";
import { watchDownload } from "./download-watchdog.js";
import { type RetryOptions, withRetry } from "./retry.js";
import type { ShardCache } from "./shard-cache.js";
import type { SlotKeys } from "./slot-keys.js";

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
async function fetchVerified(label: string, shard: ManifestShard, o: ShardLoadOptions) {
  const bytes = await download(new URL(shardPath(shard), o.baseUrl), shardCiphertextSize(shard), o);
  await checkShardBytes(shard, bytes, label);
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
  label: string,
  shard: ManifestShard,
  key: Promise<CryptoKey>,
  context: ShardContext,
  o: ShardLoadOptions,
  downloaded: (bytes: number, fromCache: boolean) => void,
): Promise<Uint8Array> {
  const open = async (bytes: Uint8Array) => openShard(await key, fromBase64Url(shard.iv), bytes, context);
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
        message: `cached shard ${shard.index} of ${label} was corrupt; fetched again`,
      });
    }
  } else if (cached) {
    await o.cache?.drop(shard.sha256);
  }
  const bytes = await fetchVerified(label, shard, o);
  downloaded(bytes.length, false);
  // Downloads start before the license arrives; decryption waits for its key.
  return open(bytes);
}

/** Download/decrypt jobs: every shard of every file, then one variant per trace slot. */
type Job =
  | { kind: "shard"; file: ManifestFile; shard: ManifestShard }
  | { kind: "slot"; file: ManifestFile; index: number };

/**
 * Fetches, verifies and decrypts every shard of every file with bounded parallelism (fetching
 * while the content key is still on its way), each file into one buffer allocated once at its
 * final size. A traceable model's slots are zero in the shards; the variant the license selects
 * for each slot is fetched, verified and decrypted under its own key, and written over the slot
 * once every shard is in place. Plaintext exists only here and in the session; the caller
 * zeroes these buffers once the session holds the model.
 */
export async function loadShards(
  manifest: Manifest,
  contentKey: Promise<CryptoKey>,
  slotKeys: Promise<SlotKeys> | undefined,
  o: ShardLoadOptions,
): Promise<Map<string, Uint8Array>> {
  const buffers = new Map(manifest.files.map((f) => [f.location, new Uint8Array(f.size)]));
  const fileOf = new Map(manifest.files.map((f) => [f.location, f]));
  const slots = manifest.trace?.slots ?? [];
  const jobs: Job[] = [
    ...manifest.files.flatMap((file) =>
      file.shards.map((shard) => ({ kind: "shard" as const, file, shard })),
    ),
    ...slots.map((s, index) => ({ kind: "slot" as const, file: fileOf.get(s.file) as ManifestFile, index })),
  ];
  const total =
    manifest.files.reduce((n, f) => n + f.shards.reduce((m, s) => m + shardCiphertextSize(s), 0), 0) +
    slots.reduce((n, s) => n + s.size + TAG_BYTES, 0);
  const variants: { file: string; offset: number; plain: Uint8Array }[] = [];
  let loaded = 0;
  let decrypted = 0;
  const downloaded = (location: string, index: number) => (bytes: number, fromCache: boolean) => {
    loaded += bytes;
    o.progress({
      status: "shard-downloaded",
      location,
      index,
      bytes,
      loadedBytes: loaded,
      totalBytes: total,
      fromCache,
    });
  };
  try {
    await mapLimit(jobs, o.concurrency, async (job) => {
      if (job.kind === "slot") {
        const keys = await (slotKeys as Promise<SlotKeys>);
        const slot = slots[job.index] as TraceSlot;
        const bit = keys.bits[job.index] === 1 ? 1 : 0;
        const label = `${slot.file}#trace-${bit}`;
        const shard = { index: job.index, size: slot.size, ...slot.variants[bit] };
        o.cache?.track(shard.sha256, shardCiphertextSize(shard));
        const context = variantContext(
          manifest.model,
          manifest.trace as TraceSection,
          job.file.size,
          job.index,
          bit,
        );
        const key = Promise.resolve(keys.keys[job.index] as CryptoKey);
        const plain = await openOne(label, shard, key, context, o, downloaded(label, job.index));
        variants.push({ file: slot.file, offset: slot.offset, plain });
        return;
      }
      const { file, shard } = job;
      const context = shardContext(manifest, file, shard.index);
      const plain = await openOne(
        file.location,
        shard,
        contentKey,
        context,
        o,
        downloaded(file.location, shard.index),
      );
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
    // Every shard is in place: the slots are zero there until their variants go in.
    for (const v of variants) (buffers.get(v.file) as Uint8Array).set(v.plain, v.offset);
  } catch (e) {
    // Nothing partial is ever handed on: wipe what was decrypted so far.
    for (const b of buffers.values()) b.fill(0);
    throw e;
  } finally {
    for (const v of variants) v.plain.fill(0);
  }
  return buffers;
}
