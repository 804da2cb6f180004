import { expect, type Page, test } from "@playwright/test";
import { type BrowserEnv, browserEnv, newClient } from "./env.js";

const WASM = "/node_modules/onnxruntime-web/dist/";
let env: BrowserEnv;
test.beforeAll(() => {
  env = browserEnv();
});

/** Keeps every Worker the page starts in window.__workers, so the test can kill one. */
async function open(page: Page) {
  await page.addInitScript(() => {
    const w = globalThis as unknown as Record<string, unknown>;
    const Original = globalThis.Worker;
    const workers: Worker[] = [];
    w.__workers = workers;
    globalThis.Worker = class extends Original {
      constructor(url: string | URL, options?: WorkerOptions) {
        super(url, options);
        workers.push(this);
      }
    };
  });
  await page.goto("/test/browser/pages/runtime.html");
  await expect(page).toHaveTitle("runtime ready");
}

/**
 * A worker that dies (out of memory, killed: here terminated, which the page cannot tell from a
 * crash) answers nothing. Every call to it must settle with a code instead of hanging, and the
 * app must be able to start over (checklist K9).
 */
test("a worker that dies rejects the pending call with ERR_WORKER_CRASHED, and loadModel works again", async ({
  page,
}) => {
  const client = await newClient(env);
  await open(page);
  const outcome = await page.evaluate(
    async ({ env, token, wasm }) => {
      const w = globalThis as unknown as Record<string, any>;
      const options = (kill?: string) => ({
        licenseServer: env.licenseServer,
        credential: token,
        publisherKeys: [env.publisherKey],
        wasmPaths: wasm,
        backend: "wasm",
        retry: { attempts: 2, baseDelayMs: 50 },
        onProgress: (p: { status: string }) => {
          if (p.status === kill) w.__workers.at(-1).terminate();
        },
      });
      const url = "/test/browser/fixtures-out/digits-v1/manifest.jws";
      const code = (e: unknown) => (e as { code?: string }).code ?? String(e);
      // Settles within 10 s, or reports that it hung.
      const settle = (p: Promise<unknown>) =>
        Promise.race([
          p.then(
            () => "resolved",
            (e) => code(e),
          ),
          new Promise((r) => setTimeout(() => r("hung"), 10_000)),
        ]);
      const input = () => ({ pixels: { data: new Float32Array(784), dims: [1, 784] } });
      // Killed while loading, after the license arrived.
      const duringLoad = await settle(w.mv.loadModel(url, options("license-granted")));
      // Killed with a call in flight, then every later call.
      const model = await w.mv.loadModel(url, options());
      const before = await settle(model.run(input()));
      const pending = model.renew();
      w.__workers.at(-1).terminate();
      const inFlight = await settle(pending);
      const later = await settle(model.run(input()));
      const isCoded = await model
        .run(input())
        .catch((e: unknown) => w.mv.isModelVaultError(e, "ERR_WORKER_CRASHED"));
      const disposed = await settle(model.dispose());
      // Start over: a new worker, the same device.
      const again = await w.mv.loadModel(url, options());
      const after = await settle(again.run(input()));
      await again.dispose();
      return { duringLoad, before, inFlight, later, isCoded, disposed, after };
    },
    { env, token: client.token, wasm: WASM },
  );
  expect(outcome).toEqual({
    duringLoad: "ERR_WORKER_CRASHED",
    before: "resolved",
    inFlight: "ERR_WORKER_CRASHED",
    later: "ERR_WORKER_CRASHED",
    isCoded: true,
    disposed: "resolved",
    after: "resolved",
  });
});
