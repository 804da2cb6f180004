/**
 * Storage that runs out, for real: a browser profile on a small tmpfs, filled with other data
 * until a model's ciphertext no longer fits. The origin's quota still promises room (Chromium
 * floors it at 1 GiB), so the cache plans to store the model and the disk refuses the writes:
 * the model still loads and runs, the app is told the cache was skipped and why, nothing of
 * the model stays in IndexedDB, and the model cached before it is untouched. (Eviction under
 * a quota that is really exceeded: test/worker/shard-cache.test.ts.)
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, expect, type Page, test } from "@playwright/test";
import { CHROMIUM_ARGS, chromiumPath } from "./chromium.js";
import { type BrowserEnv, browserEnv, entitle, newClient } from "./env.js";

const WASM = "/node_modules/onnxruntime-web/dist/";
let env: BrowserEnv;
test.beforeAll(() => {
  env = browserEnv();
});

/** Mounts a small tmpfs, or says why it cannot (not root, no mount permission). */
function smallDisk(): { dir: string } | { skip: string } {
  if (process.getuid?.() !== 0) return { skip: "not root: cannot mount a small tmpfs to fill" };
  const dir = mkdtempSync(join(tmpdir(), "mv-disk-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=96m,mode=0700", "tmpfs", dir], { stdio: "pipe" });
    return { dir };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    return {
      skip: `mounting a tmpfs is not allowed here: ${String((e as { stderr?: Buffer }).stderr ?? e)}`,
    };
  }
}

async function load(page: Page, path: string, token: string, input: { name: string; dims: number[] }) {
  return page.evaluate(
    async ({ env, path, token, input, wasm }) => {
      const w = globalThis as unknown as Record<string, any>;
      const warnings: { code: string; message: string }[] = [];
      try {
        const model = await w.mv.loadModel(`/test/browser/fixtures-out/${path}/manifest.jws`, {
          licenseServer: env.licenseServer,
          credential: token,
          publisherKeys: [env.publisherKey],
          wasmPaths: wasm,
          backend: "wasm",
          onProgress: (p: any) => {
            if (p.status === "warning") warnings.push({ code: p.code, message: p.message });
          },
        });
        const n = input.dims.reduce((a: number, b: number) => a * b, 1);
        const out = await model.run({ [input.name]: { data: new Float32Array(n), dims: input.dims } });
        const cached = await model.whenCached();
        await model.dispose();
        return { ok: true, warnings, cached, ran: Object.keys(out).length > 0 };
      } catch (e) {
        return { ok: false, code: (e as { code?: string }).code ?? String(e), warnings };
      }
    },
    { env, path, token, input, wasm: WASM },
  );
}

/** The models recorded as cached and the number of cached shards in the profile. */
const contents = (page: Page) =>
  page.evaluate(async () => {
    const db = await new Promise<IDBDatabase>((r) => {
      const q = indexedDB.open("modelvault");
      q.onsuccess = () => r(q.result);
    });
    const keys = (store: string) =>
      new Promise<IDBValidKey[]>((r) => {
        const q = db.transaction(store).objectStore(store).getAllKeys();
        q.onsuccess = () => r(q.result);
      });
    const out = { models: (await keys("models")).map(String), shards: (await keys("shards")).length };
    db.close();
    return out;
  });

test("a disk that fills: the model loads and runs uncached, says why, leaves nothing, keeps the older model", async ({
  baseURL,
}) => {
  test.setTimeout(180_000);
  const disk = smallDisk();
  test.skip("skip" in disk, "skip" in disk ? disk.skip : "");
  if (!("dir" in disk)) return;
  const client = await newClient(env);
  await entitle(env, client.id, { modelId: "ext" });
  const context = await chromium.launchPersistentContext(join(disk.dir, "profile"), {
    executablePath: chromiumPath(),
    args: [...CHROMIUM_ARGS, "--disable-gpu"],
    baseURL: baseURL as string,
  });
  const filler = join(disk.dir, "filler");
  try {
    const page = await context.newPage();
    await page.goto("/test/browser/pages/runtime.html");
    await expect(page).toHaveTitle("runtime ready");
    const digits = await load(page, "digits-v1", client.token, { name: "pixels", dims: [1, 784] });
    expect(digits).toMatchObject({ ok: true, cached: { complete: true } });
    const before = await contents(page);
    expect(before.models).toEqual(["digits@1"]);

    // Other data fills the disk but for 1 MiB: the 3.1 MB model cannot be stored.
    const { bavail, bsize } = statfsSync(disk.dir);
    writeFileSync(filler, Buffer.alloc(Math.max(0, bavail * bsize - 2 ** 20)));
    const ext = await load(page, "ext-v1", client.token, { name: "x", dims: [1, 3075] });
    rmSync(filler, { force: true });
    expect(ext.ok, ext.ok ? "" : ext.code).toBe(true);
    expect(ext.ran).toBe(true);
    const skipped = ext.warnings.find((w) => w.code === "ERR_CACHE_SKIPPED");
    expect(skipped?.message).toMatch(/refused a write/);
    expect(ext.cached).toMatchObject({ complete: false, stored: 0 });
    // Nothing of ext stayed; digits, cached before, is still whole.
    expect(await contents(page)).toEqual(before);
    const again = await load(page, "digits-v1", client.token, { name: "pixels", dims: [1, 784] });
    expect(again).toMatchObject({ ok: true, cached: { complete: true, stored: 0 } });
  } finally {
    rmSync(filler, { force: true });
    await context.close();
    execFileSync("umount", [disk.dir], { stdio: "pipe" });
    rmSync(disk.dir, { recursive: true, force: true });
  }
});
