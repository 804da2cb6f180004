/**
 * The ciphertext cache against a storage quota. The quota is the one stand-in here
 * (`fakeQuota`): Chromium floors an origin's quota at 1 GiB even on a tiny disk and ignores
 * CDP's quota override (Storage.overrideQuotaForOrigin, Chromium 156), so a quota that two
 * small models overflow cannot be caused for real in a browser.
 */
import { describe, expect, it } from "vitest";
import type { LoadProgress } from "../../src/core/progress.js";
import type { EstimateStorage } from "../../worker/shard-cache.js";
import { openStorage } from "../../worker/storage.js";
import { grant, startHarness } from "../server/harness.js";
import { IDBFactory, loadRuntime, optionsFor, pixels, serveModels } from "./setup.js";

const h = await startHarness();
const served = await serveModels(h, [{ id: "second" }, { id: "third" }]);
const licensor = await h.principal("lic", ["licensor"]);
const client = await h.principal("client", ["client"]);
for (const modelId of ["digits", "second", "third"])
  await grant(h, licensor.token, client.id, {
    modelId,
    maxDevices: 50,
    licenseAllowance: 100,
    quota: 100_000,
  });

/** A quota of `free` bytes above what the fake IndexedDB holds in shards (the stand-in). */
function fakeQuota(idb: IDBFactory, free: () => number): EstimateStorage {
  return async () => {
    const storage = await openStorage(idb);
    let usage = 0;
    for (const key of (await storage?.db.getAllKeys("shards")) ?? [])
      usage += (await storage?.getShard(String(key)))?.byteLength ?? 0;
    storage?.db.close();
    return { usage, quota: usage + free() };
  };
}

const warnings = (progress: LoadProgress[]) =>
  progress.flatMap((p) => (p.status === "warning" ? [{ code: p.code, message: p.message }] : []));

async function cachedModels(idb: IDBFactory) {
  const storage = await openStorage(idb);
  const models = (await storage?.db.getAllKeys("models"))?.map(String).sort();
  const shards = (await storage?.db.getAllKeys("shards"))?.length;
  storage?.db.close();
  return { models, shards };
}

describe("a cache sized against the quota", () => {
  it("evicts the least recently used model (never the one loading) when the next does not fit", async () => {
    const idb = new IDBFactory();
    let free = 10 * 2 ** 20;
    const quota = fakeQuota(idb, () => free);
    const load = (id: string) =>
      loadRuntime(optionsFor(h, served, { manifestUrl: served.url(id) }), client.token, idb, quota);
    const first = await load("digits");
    const size = first.progress.find((p) => p.status === "storage");
    expect(size).toMatchObject({ status: "storage", needed: expect.any(Number) });
    const needed = size?.status === "storage" ? size.needed : 0;
    await first.runtime.dispose();
    h.clock.advance(10);
    await (await load("second")).runtime.dispose();
    expect((await cachedModels(idb)).models).toEqual(["digits@1", "second@1"]);

    // Room for one more model only once one goes: digits, used longest ago, is evicted.
    free = needed / 2;
    h.clock.advance(10);
    const third = await load("third");
    expect(warnings(third.progress)).toEqual([
      { code: "ERR_CACHE_EVICTED", message: expect.stringContaining("evicted digits@1") },
    ]);
    expect(await third.runtime.whenCached()).toMatchObject({ complete: true });
    expect((await cachedModels(idb)).models).toEqual(["second@1", "third@1"]);
    await third.runtime.dispose();
  });

  it("a model that cannot fit even after evicting runs uncached, says why, and leaves nothing", async () => {
    const idb = new IDBFactory();
    const loaded = await loadRuntime(
      optionsFor(h, served),
      client.token,
      idb,
      fakeQuota(idb, () => 1000),
    );
    expect(await loaded.runtime.run(pixels())).toBeDefined();
    const skipped = warnings(loaded.progress).find((w) => w.code === "ERR_CACHE_SKIPPED");
    expect(skipped?.message).toMatch(/needs .* MiB more; the origin's quota/);
    expect(await loaded.runtime.whenCached()).toMatchObject({ complete: false, stored: 0 });
    expect(await cachedModels(idb)).toEqual({ models: [], shards: 0 });
  });
});
