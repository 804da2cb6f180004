/**
 * A backend that works, not one that merely loads. onnxruntime-web's WebGPU backend creates a
 * session for a MaxPool with ceil_mode and then fails its first run (checked first, against
 * plain onnxruntime-web, so the fault is real). With backend "auto" the runtime's trial run
 * notices, loads the model on WASM, says why, and remembers it for the next load on this
 * device; a model WebGPU runs stays on WebGPU; asking for WebGPU explicitly fails the load
 * with a coded error instead of a model that breaks at the first run().
 */
import { type Browser, chromium, expect, type Page, test } from "@playwright/test";
import { CHROMIUM_ARGS, chromiumPath, WEBGPU_ARGS } from "./chromium.js";
import { type BrowserEnv, browserEnv, entitle, newClient } from "./env.js";

const WASM = "/node_modules/onnxruntime-web/dist/";
let env: BrowserEnv;
let browser: Browser;
test.beforeAll(async () => {
  env = browserEnv();
  browser = await chromium.launch({
    executablePath: chromiumPath(),
    args: [...CHROMIUM_ARGS, ...WEBGPU_ARGS],
  });
});
test.afterAll(async () => {
  await browser?.close();
});

const X = Array.from({ length: 25 }, (_, i) => i);

async function secure(page: Page, token: string, model: string, backend: "auto" | "webgpu") {
  return page.evaluate(
    async ({ env, token, model, backend, x, wasm }) => {
      const w = globalThis as unknown as Record<string, any>;
      const t0 = performance.now();
      try {
        const m = await w.mv.loadModel(`/test/browser/fixtures-out/${model}/manifest.jws`, {
          licenseServer: env.licenseServer,
          credential: token,
          publisherKeys: [env.publisherKey],
          wasmPaths: wasm,
          backend,
        });
        const ms = performance.now() - t0;
        const input =
          model === "pool-v1"
            ? { x: { data: new Float32Array(x), dims: [1, 1, 5, 5] } }
            : { pixels: { data: new Float32Array(784).fill(0.5), dims: [1, 784] } };
        const out = await m.run(input);
        await m.dispose();
        const first = Object.values(out)[0] as { data: Float32Array };
        return { ok: true, backend: m.backend, reason: m.backendReason, y: Array.from(first.data), ms };
      } catch (e) {
        return { ok: false, code: (e as { code?: string }).code, message: String((e as Error).message) };
      }
    },
    { env, token, model, backend, x: X, wasm: WASM },
  );
}

/** Plain onnxruntime-web on the unencrypted file: create, then run. */
async function plain(page: Page, ep: "wasm" | "webgpu") {
  return page.evaluate(
    async ({ ep, x }) => {
      const ort = (globalThis as unknown as Record<string, any>).ort;
      const bytes = new Uint8Array(
        await (await fetch("/test/browser/fixtures-out/pool-plain/pool.onnx")).arrayBuffer(),
      );
      const session = await ort.InferenceSession.create(bytes, { executionProviders: [ep] });
      try {
        const out = await session.run({ x: new ort.Tensor("float32", new Float32Array(x), [1, 1, 5, 5]) });
        return {
          created: true,
          y: Array.from((out.y.location === "cpu" ? out.y.data : await out.y.getData()) as Float32Array),
        };
      } catch (e) {
        return { created: true, error: String(e) };
      } finally {
        await session.release();
      }
    },
    { ep, x: X },
  );
}

test("a model WebGPU loads but cannot run falls back to WASM with the reason, remembered per device", async ({
  baseURL,
}) => {
  test.setTimeout(240_000);
  const client = await newClient(env, { modelId: "pool" });
  await entitle(env, client.id);
  const page = await browser.newPage({ baseURL: baseURL as string });
  await page.goto("/test/browser/pages/runtime.html");
  await expect(page).toHaveTitle("runtime ready");

  // The fault is real: plain onnxruntime-web creates the WebGPU session, then its run fails.
  const gpu = await plain(page, "webgpu");
  expect(gpu.error).toMatch(/ceil_mode/);
  const cpu = await plain(page, "wasm");
  expect(cpu.y).toEqual([6, 8, 9, 16, 18, 19, 21, 23, 24]);

  const first = await secure(page, client.token, "pool-v1", "auto");
  expect(first).toMatchObject({ ok: true, backend: "wasm", y: cpu.y });
  expect(first.reason).toMatch(
    /WebGPU loaded the model but failed its trial run .*ceil_mode.*; WASM instead/,
  );
  const second = await secure(page, client.token, "pool-v1", "auto");
  expect(second).toMatchObject({ ok: true, backend: "wasm", y: cpu.y });
  expect(second.reason).toMatch(/failed this model's trial run on an earlier load/);

  const explicit = await secure(page, client.token, "pool-v1", "webgpu");
  expect(explicit).toMatchObject({ ok: false, code: "ERR_SESSION_FAILED" });
  expect(explicit.message).toMatch(/WebGPU was requested, but the model cannot run on it/);

  // A model WebGPU does run stays there; the trial run is paid once (printed: first vs second load).
  const digitsFirst = await secure(page, client.token, "digits-v1", "auto");
  const digitsSecond = await secure(page, client.token, "digits-v1", "auto");
  expect(digitsFirst).toMatchObject({ ok: true, backend: "webgpu" });
  expect(digitsSecond).toMatchObject({ ok: true, backend: "webgpu" });
  console.log(
    `digits on WebGPU: first load (with trial run) ${digitsFirst.ms?.toFixed(0)} ms, second ${digitsSecond.ms?.toFixed(0)} ms`,
  );
  await page.close();
});
