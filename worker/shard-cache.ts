/**
 * The ciphertext cache of one load, sized against the origin's storage quota. Before the
 * downloads, it works out what the model still needs and what the quota leaves; when that does
 * not fit it evicts other models, least recently used first (never the model being loaded),
 * and when even that is not enough it skips caching with a warning that says why. A write the
 * browser refuses anyway (the estimate was optimistic) stops caching and removes what this
 * load wrote, so no model is left half-cached by a full disk. Writes never hold the load up.
 */
import { type Manifest, shardCiphertextSize } from "../src/core/manifest.js";
import type { LoadProgress } from "../src/core/progress.js";
import { TAG_BYTES } from "../src/core/shard-cipher.js";
import type { CacheReport } from "../src/core/worker-protocol.js";
import type { CachedModel, Storage } from "./storage.js";

export interface StorageEstimateOf {
  usage: number;
  quota: number;
}

/** What the origin uses and may use; undefined where the browser does not say. */
export type EstimateStorage = () => Promise<StorageEstimateOf | undefined>;

const MiB = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

export async function browserStorageEstimate(): Promise<StorageEstimateOf | undefined> {
  const storage = (globalThis.navigator as { storage?: StorageManager } | undefined)?.storage;
  const e = await storage?.estimate?.().catch(() => undefined);
  return e?.quota !== undefined ? { usage: e.usage ?? 0, quota: e.quota } : undefined;
}

/** What a model puts in the cache: its shards, and one variant of each trace slot. */
export function cachedObjects(manifest: Manifest, now: number) {
  return {
    key: `${manifest.model.id}@${manifest.model.version}`,
    shards: manifest.files.flatMap((f) =>
      f.shards.map((s) => ({ sha256: s.sha256, size: shardCiphertextSize(s) })),
    ),
    slots: manifest.trace?.slots.map((s) => ({
      variants: [s.variants[0].sha256, s.variants[1].sha256] as [string, string],
      size: s.size + TAG_BYTES,
    })),
    now,
  };
}

export class ShardCache {
  private on = true;
  private reason: string | undefined;
  private readonly written: string[] = [];
  private writtenBytes = 0;
  private readonly writes: Promise<void>[] = [];

  private constructor(
    private readonly storage: Storage,
    private readonly model: CachedModel,
    private readonly present: Set<string>,
    private readonly progress: (p: LoadProgress) => void,
    /** Every digest in storage when the load began (tracked objects may be among them). */
    private readonly stored: Set<string>,
  ) {}

  /**
   * Plans the cache for a model with these shards (digest and ciphertext size): reports the
   * storage estimate, evicts if needed, or decides to skip.
   */
  static async open(
    storage: Storage,
    model: {
      key: string;
      shards: { sha256: string; size: number }[];
      /**
       * A traceable model's slots: which variant the load needs is known only once the license
       * arrives, but a device only ever stores one of each, so a slot with neither is still needed.
       */
      slots?: { variants: [string, string]; size: number }[];
      now: number;
    },
    progress: (p: LoadProgress) => void,
    persisted: boolean | undefined,
    estimate: EstimateStorage = browserStorageEstimate,
  ): Promise<ShardCache> {
    const keys = new Set((await storage.db.getAllKeys("shards").catch(() => [])).map(String));
    const present = new Set(model.shards.filter((s) => keys.has(s.sha256)).map((s) => s.sha256));
    const record: CachedModel = {
      key: model.key,
      shards: model.shards.map((s) => s.sha256),
      bytes: model.shards.reduce((n, s) => n + s.size, 0),
      lastUsed: model.now,
    };
    const cache = new ShardCache(storage, record, present, progress, keys);
    const need =
      model.shards.filter((s) => !present.has(s.sha256)).reduce((n, s) => n + s.size, 0) +
      (model.slots ?? [])
        .filter((v) => !keys.has(v.variants[0]) && !keys.has(v.variants[1]))
        .reduce((n, v) => n + v.size, 0);
    const before = await estimate();
    if (before)
      progress({
        status: "storage",
        usage: before.usage,
        quota: before.quota,
        needed: need,
        ...(persisted !== undefined ? { persisted } : {}),
      });
    if (before && need > before.quota - before.usage) {
      const freed = await cache.evict(need - (before.quota - before.usage));
      if (need > before.quota - before.usage + freed)
        cache.stop(
          `the model needs ${MiB(need)} more; the origin's quota of ${MiB(before.quota)} leaves ${MiB(before.quota - before.usage + freed)} after evicting older models`,
        );
    }
    // Recorded now, as used now: a concurrent load elsewhere never evicts a model being loaded here.
    if (cache.on) await storage.db.put("models", record).catch(() => undefined);
    return cache;
  }

  get enabled(): boolean {
    return this.on;
  }

  /** Deletes least recently used models (not this one, nor shards it shares) until `bytes` are freed. */
  private async evict(bytes: number): Promise<number> {
    const mine = new Set(this.model.shards);
    const models = (await this.storage.db.getAll("models").catch(() => [] as CachedModel[]))
      .filter((m) => m.key !== this.model.key)
      .sort((a, b) => a.lastUsed - b.lastUsed);
    let freed = 0;
    for (const m of models) {
      if (freed >= bytes) break;
      for (const sha of m.shards) if (!mine.has(sha)) await this.storage.deleteShard(sha);
      await this.storage.db.delete("models", m.key).catch(() => undefined);
      freed += m.bytes;
      this.progress({
        status: "warning",
        code: "ERR_CACHE_EVICTED",
        message: `evicted ${m.key} (${MiB(m.bytes)}, least recently used) to make room for ${this.model.key}`,
      });
    }
    return freed;
  }

  private stop(reason: string): void {
    if (!this.on) return;
    this.on = false;
    this.reason = reason;
    this.progress({ status: "warning", code: "ERR_CACHE_SKIPPED", message: `not cached: ${reason}` });
  }

  /**
   * Adds an object learnt after the plan (a trace slot's variant: which one depends on the
   * license) to this model's record, so eviction removes it and completeness counts it.
   */
  track(sha256: string, size: number): void {
    if (this.model.shards.includes(sha256)) return;
    if (this.stored.has(sha256)) this.present.add(sha256);
    this.model.shards.push(sha256);
    this.model.bytes += size;
  }

  async get(sha256: string): Promise<Uint8Array | undefined> {
    return this.present.has(sha256) ? this.storage.getShard(sha256) : undefined;
  }

  async drop(sha256: string): Promise<void> {
    this.present.delete(sha256);
    await this.storage.deleteShard(sha256);
  }

  /** Stores a verified shard in the background; the caller's buffer is free as soon as this returns. */
  put(sha256: string, bytes: Uint8Array): void {
    if (!this.on) return;
    this.writes.push(
      this.storage.putShard(sha256, bytes).then(async (stored) => {
        if (stored) {
          this.written.push(sha256);
          this.present.add(sha256);
          this.writtenBytes += bytes.byteLength;
          return;
        }
        this.stop("the browser refused a write (storage full or evicted)");
      }),
    );
  }

  /** Waits for the writes; records the model, or removes what this load wrote if caching stopped. */
  async settle(): Promise<CacheReport> {
    await Promise.all(this.writes);
    if (!this.on) {
      for (const sha of this.written) await this.storage.deleteShard(sha);
      await this.storage.db.delete("models", this.model.key).catch(() => undefined);
      return { complete: false, stored: 0, bytes: 0, ...(this.reason ? { skipped: this.reason } : {}) };
    }
    const complete = this.model.shards.every((s) => this.present.has(s));
    await this.storage.db.put("models", this.model).catch(() => undefined);
    return { complete, stored: this.written.length, bytes: this.writtenBytes };
  }
}
