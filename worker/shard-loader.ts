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

/**
 * Variants are small (a slot is a few hundred bytes to a few hundred KiB) and many (up to 512):
 * they are fetched beside the shards, not queued behind them, with more requests in flight, so
 * per-request latency rather than bandwidth bounds them.
 */
const SLOT_CONCURRENCY = 16;

/**
 * Runs shard jobs and slot jobs side by side; the first failure stops both from starting more,
 * and is rethrown once everything running has settled (so the caller's wipe comes last).
 */
async function runBoth<A, B>(
  a: { items: readonly A[]; limit: number; task: (item: A) => Promise<void> },
  b: { items: readonly B[]; limit: number; task: (item: B) => Promise<void> },
): Promise<void> {
  let failure: { reason: unknown } | undefined;
  const guarded =
    <T>(task: (item: T) => Promise<void>) =>
    async (item: T) => {
      if (failure) return;
      try {
        await task(item);
      } catch (e) {
        failure ??= { reason: e };
      }
    };
  await Promise.all([
    mapLimit(a.items, a.limit, guarded(a.task)),
    mapLimit(b.items, b.limit, guarded(b.task)),
  ]);
  if (failure) throw failure.reason;
}

export async function loadShards(
  manifest: Manifest,
  contentKey: Promise<CryptoKey>,
  slotKeys: Promise<SlotKeys> | undefined,
  o: ShardLoadOptions,
): Promise<Map<string, Uint8Array>> {
  const buffers = new Map(manifest.files.map((f) => [f.location, new Uint8Array(f.size)]));
  const fileOf = new Map(manifest.files.map((f) => [f.location, f]));
  const slots = manifest.trace?.slots ?? [];
  const shardJobs = manifest.files.flatMap((file) => file.shards.map((shard) => ({ file, shard })));
  const slotJobs = slots.map((_, index) => index);
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
    const openSlot = async (index: number) => {
      const keys = await (slotKeys as Promise<SlotKeys>);
      const slot = slots[index] as TraceSlot;
      const bit = keys.bits[index] === 1 ? 1 : 0;
      const label = `${slot.file}#trace-${bit}`;
      const shard = { index, size: slot.size, ...slot.variants[bit] };
      o.cache?.track(shard.sha256, shardCiphertextSize(shard));
      const fileSize = (fileOf.get(slot.file) as ManifestFile).size;
      const context = variantContext(manifest.model, manifest.trace as TraceSection, fileSize, index, bit);
      const key = Promise.resolve(keys.keys[index] as CryptoKey);
      const plain = await openOne(label, shard, key, context, o, downloaded(label, index));
      variants.push({ file: slot.file, offset: slot.offset, plain });
    };
    const openShardJob = async ({ file, shard }: { file: ManifestFile; shard: ManifestShard }) => {
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
    };
    await runBoth(
      { items: shardJobs, limit: o.concurrency, task: openShardJob },
      { items: slotJobs, limit: Math.max(o.concurrency, SLOT_CONCURRENCY), task: openSlot },
    );
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
