import "fake-indexeddb/auto"; // idb checks instanceof IDBRequest & co. against the globals
import { cp } from "node:fs/promises";
import { join } from "node:path";
import { IDBFactory } from "fake-indexeddb";
import { afterAll } from "vitest";
import type { EcJwk } from "../../src/core/jwk.js";
import type { LoadProgress } from "../../src/core/progress.js";
import type { RuntimeEvent, RuntimeLoadOptions } from "../../src/core/worker-protocol.js";
import { ModelRuntime } from "../../worker/runtime.js";
import type { EstimateStorage } from "../../worker/shard-cache.js";
import { tempDir } from "../fixtures.js";
import { type StaticServer, startStaticServer } from "../helpers/static-server.js";
import { type Harness, registerDigits } from "../server/harness.js";

export { IDBFactory };

/** A model packed, registered and served as static files, as a runtime test needs it. */
export interface Served {
  files: StaticServer;
  publisherKey: EcJwk;
  /** Served model packages by id, e.g. manifests[`digits`] = URL of digits/manifest.jws. */
  url(id: string): string;
  digest: Record<string, string>;
}

/** Registers digits (and `more` models, same publisher) on `h` and serves their packages. */
export async function serveModels(
  h: Harness,
  more: { id: string; outputPolicy?: Record<string, number> }[] = [],
): Promise<Served> {
  const publisher = await h.principal(`pub${Math.random()}`, ["publisher"]);
  const root = await tempDir("mv-static-");
  const first = await registerDigits(h, publisher);
  await cp(first.dir, join(root, "digits"), { recursive: true });
  const digest: Record<string, string> = { digits: first.digest };
  for (const m of more) {
    const reg = await registerDigits(h, publisher, 1, {
      id: m.id,
      keys: first.publisher,
      ...(m.outputPolicy ? { outputPolicy: m.outputPolicy } : {}),
    });
    await cp(reg.dir, join(root, m.id), { recursive: true });
    digest[m.id] = reg.digest;
  }
  const files = await startStaticServer(root);
  afterAll(() => files.close());
  return {
    files,
    publisherKey: first.publisher.publicJwk,
    url: (id) => `${files.url}/${id}/manifest.jws`,
    digest,
  };
}

/** The server's license signing keys as an app pins them (current and next, from its JWKS). */
export async function licenseKeysOf(h: Harness): Promise<EcJwk[]> {
  const jwks = (await h.call("GET", "/.well-known/jwks.json")).body as { keys: (EcJwk & { use: string })[] };
  return jwks.keys.filter((k) => k.use === "sig");
}

export interface Loaded {
  runtime: ModelRuntime;
  progress: LoadProgress[];
  events: RuntimeEvent[];
  idb: IDBFactory;
}

const runtimes: ModelRuntime[] = [];
afterAll(async () => {
  for (const r of runtimes) await r.dispose();
});

/** Loads a model in a fresh runtime (disposed after the file) with real crypto and a fake IndexedDB. */
export async function loadRuntime(
  options: RuntimeLoadOptions,
  credential: string | (() => Promise<string>),
  idb = new IDBFactory(),
  estimateStorage?: EstimateStorage,
): Promise<Loaded> {
  const progress: LoadProgress[] = [];
  const events: RuntimeEvent[] = [];
  const runtime = new ModelRuntime(idb, estimateStorage);
  runtimes.push(runtime);
  await runtime.load(options, {
    progress: (p) => progress.push(p),
    event: (e) => events.push(e),
    credential: typeof credential === "string" ? async () => credential : credential,
  });
  await runtime.whenCached(); // the cache fills after the load: tests that reload want it full
  return { runtime, progress, events, idb };
}

/** Default runtime options for `h` and a served model. */
export function optionsFor(
  h: Harness,
  served: Served,
  over: Partial<RuntimeLoadOptions> = {},
): RuntimeLoadOptions {
  return {
    manifestUrl: served.url("digits"),
    licenseServer: h.url,
    publisherKeys: [served.publisherKey],
    backend: "wasm",
    cache: true,
    allowOffline: true,
    retry: { attempts: 2, baseDelayMs: 10 },
    concurrency: 4,
    wallClock: h.clock.now(),
    ...over,
  };
}

export const pixels = () => ({
  pixels: { type: "float32", data: new Float32Array(784).fill(0.5), dims: [1, 784] },
});

/** The error code a promise settles with, or "ok". */
export const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => "ok",
    (e: { code?: string; message?: string }) => e.code ?? e.message,
  );
