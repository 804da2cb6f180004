import "fake-indexeddb/auto"; // idb checks instanceof IDBRequest & co. against the globals
import { cp } from "node:fs/promises";
import { join } from "node:path";
import { IDBFactory, IDBObjectStore } from "fake-indexeddb";
import { beforeAll, describe, expect, it } from "vitest";
import type { LoadProgress } from "../../src/core/progress.js";
import { ModelRuntime } from "../../worker/runtime.js";
import { openStorage } from "../../worker/storage.js";
import { cleanup, tempDir } from "../fixtures.js";
import { type StaticServer, startStaticServer } from "../helpers/static-server.js";
import { grant, type Harness, registerDigits, startHarness } from "../server/harness.js";

let h: Harness;
let files: StaticServer;
let client: { id: string; token: string };
let publisherKey: unknown;

beforeAll(async () => {
  h = await startHarness();
  const publisher = await h.principal("pub", ["publisher"]);
  const licensor = await h.principal("lic", ["licensor"]);
  client = await h.principal("client", ["client"]);
  const reg = await registerDigits(h, publisher);
  publisherKey = reg.publisher.publicJwk;
  await grant(h, licensor.token, client.id, { maxDevices: 10 });
  const root = await tempDir("mv-full-");
  await cp(reg.dir, join(root, "digits"), { recursive: true });
  files = await startStaticServer(root);
  cleanup(() => files.close());
});

async function load(idb: IDBFactory) {
  const progress: LoadProgress[] = [];
  const runtime = new ModelRuntime(idb);
  cleanup(() => runtime.dispose());
  await runtime.load(
    {
      manifestUrl: `${files.url}/digits/manifest.jws`,
      licenseServer: h.url,
      publisherKeys: [publisherKey as never],
      backend: "wasm",
      cache: true,
      allowOffline: true,
      retry: { attempts: 2, baseDelayMs: 10 },
      concurrency: 4,
      wallClock: h.clock.now(),
    },
    { progress: (p) => progress.push(p), event: () => {}, credential: async () => client.token },
  );
  return { runtime, progress };
}

/**
 * An origin over its storage quota (Chrome: QuotaExceededError or AbortError on the write):
 * shards are the big writes, so the store for them is made to refuse every put.
 */
function refuseShardWrites(): () => void {
  const put = IDBObjectStore.prototype.put;
  IDBObjectStore.prototype.put = function (this: IDBObjectStore, ...args: Parameters<typeof put>) {
    if (this.name === "shards") throw new DOMException("the origin is over its quota", "QuotaExceededError");
    return put.apply(this, args);
  };
  return () => {
    IDBObjectStore.prototype.put = put;
  };
}

describe("browser storage full (K7)", () => {
  it("a full quota leaves shards uncached and the load running with a warning; usage state is still kept, and caching resumes once there is room", async () => {
    const idb = new IDBFactory();
    const restore = refuseShardWrites();
    let full: Awaited<ReturnType<typeof load>>;
    try {
      full = await load(idb);
      await full.runtime.run({ pixels: { type: "float32", data: new Float32Array(784), dims: [1, 784] } });
      expect(await full.runtime.flushUsage()).toMatchObject({ pending: 0 });
    } finally {
      restore();
    }
    expect(full.progress).toContainEqual(
      expect.objectContaining({ status: "warning", code: "ERR_CACHE_SKIPPED" }),
    );
    const storage = await openStorage(idb);
    expect(await storage?.db.count("shards")).toBe(0);
    // The small, durable writes went through: the device's keys and its usage chain state.
    expect(await storage?.db.count("devices")).toBe(1);
    expect(await storage?.db.count("usage")).toBe(1);
    const reports = await h.server.ctx.db.kysely.selectFrom("usage_reports").selectAll().execute();
    expect(reports.map((r) => Number(r.count))).toEqual([1]);
    // Room again (the user freed space, or the browser evicted something): the next load caches.
    await full.runtime.dispose();
    const roomy = await load(idb);
    expect(await roomy.runtime.whenCached()).toMatchObject({ complete: true });
    expect(await storage?.db.count("shards")).toBeGreaterThan(0);
  });
});
