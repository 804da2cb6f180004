/**
 * A download cut mid-way (the server drops the connection in the middle of a shard and then
 * every request after it) fails the load; after a reload with the network back, the load
 * resumes from what was cached: no verified shard is fetched again, and the model runs with
 * plain onnxruntime-web's exact outputs.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, type Page, test } from "@playwright/test";
import { startStaticServer } from "../helpers/static-server.js";
import { type BrowserEnv, browserEnv, newClient } from "./env.js";

const OUT = fileURLToPath(new URL("./fixtures-out/", import.meta.url));
const WASM = "/node_modules/onnxruntime-web/dist/";
const ROWS = 3075;
const input = Array.from({ length: ROWS }, (_, i) => Math.cos(i) * 0.25);
let env: BrowserEnv;
test.beforeAll(() => {
  env = browserEnv();
});

async function load(page: Page, manifest: string, token: string) {
  return page.evaluate(
    async ({ env, manifest, token, input, rows, wasm }) => {
      const w = globalThis as unknown as Record<string, any>;
      try {
        const model = await w.mv.loadModel(manifest, {
          licenseServer: env.licenseServer,
          credential: token,
          publisherKeys: [env.publisherKey],
          wasmPaths: wasm,
          backend: "wasm",
          concurrency: 1,
          retry: { attempts: 2, baseDelayMs: 50 },
        });
        const out = await model.run({ x: { data: new Float32Array(input), dims: [1, rows] } });
        await model.whenCached();
        await model.dispose();
        return { ok: true, y: Array.from(out.y.data as Float32Array) };
      } catch (e) {
        return { ok: false, code: (e as { code?: string }).code ?? String(e) };
      }
    },
    { env, manifest, token, input, rows: ROWS, wasm: WASM },
  );
}

/** The ciphertext digests this profile holds in its shard cache. */
const cachedShards = (page: Page) =>
  page.evaluate(async () => {
    const db = await new Promise<IDBDatabase>((r) => {
      const q = indexedDB.open("modelvault");
      q.onsuccess = () => r(q.result);
    });
    const keys = await new Promise<IDBValidKey[]>((r) => {
      const q = db.transaction("shards").objectStore("shards").getAllKeys();
      q.onsuccess = () => r(q.result);
    });
    db.close();
    return keys.map(String);
  });

test("a download cut mid-way resumes after a reload from the shards already verified", async ({ page }) => {
  const files = await startStaticServer(join(OUT, "ext-v1"));
  try {
    const client = await newClient(env, { modelId: "ext" });
    await page.goto("/test/browser/pages/runtime.html");
    await expect(page).toHaveTitle("runtime ready");
    files.outageAfter(1_600_000); // about half of the 3.1 MB of ciphertext
    const first = await load(page, `${files.url}/manifest.jws`, client.token);
    expect(first).toMatchObject({ ok: false, code: "ERR_NETWORK" });
    const cached = await cachedShards(page);
    expect(cached.length).toBeGreaterThan(2);
    expect(cached.length).toBeLessThan(15);

    files.restore();
    await page.reload();
    await expect(page).toHaveTitle("runtime ready");
    const mark = files.log.length;
    const second = await load(page, `${files.url}/manifest.jws`, client.token);
    expect(second.ok, second.code).toBe(true);
    const fetched = files.log
      .slice(mark)
      .filter((l) => l.path.includes("/shards/"))
      .map((l) => l.path.replace(/^.*\/shards\/|\.bin$/g, ""));
    expect(fetched.filter((d) => cached.includes(d))).toEqual([]);
    expect(fetched.length + cached.length).toBe(16); // the graph file and three external files of five shards
    expect((await cachedShards(page)).length).toBe(16);

    const plain = await page.evaluate(
      async ({ input, rows }) => {
        const ort = (globalThis as unknown as Record<string, any>).ort;
        const base = "/test/browser/fixtures-out/ext-plain/";
        const bytes = async (n: string) => new Uint8Array(await (await fetch(base + n)).arrayBuffer());
        const externalData = await Promise.all(
          [0, 1, 2].map(async (i) => ({
            path: `ext.onnx.${i}.data`,
            data: await bytes(`ext.onnx.${i}.data`),
          })),
        );
        const s = await ort.InferenceSession.create(await bytes("ext.onnx"), {
          executionProviders: ["wasm"],
          externalData,
          graphOptimizationLevel: "all",
        });
        const out = await s.run({ x: new ort.Tensor("float32", new Float32Array(input), [1, rows]) });
        return Array.from(out.y.data as Float32Array);
      },
      { input, rows: ROWS },
    );
    expect(second.y).toEqual(plain);
  } finally {
    await files.close();
  }
});
