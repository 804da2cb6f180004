/**
 * Large models keep their weights in ONNX external-data files. A model with three of them
 * (packed as three shard sets, 256 KiB shards, the last of each partial) loads through
 * loadModel and gives exactly what plain onnxruntime-web gives on the same unencrypted files,
 * on WASM and on WebGPU (SwiftShader).
 */
import { chromium, expect, type Page, test } from "@playwright/test";
import { CHROMIUM_ARGS, chromiumPath, WEBGPU_ARGS } from "./chromium.js";
import { type BrowserEnv, browserEnv, newClient } from "./env.js";

const WASM = "/node_modules/onnxruntime-web/dist/";
const PLAIN = "/test/browser/fixtures-out/ext-plain/";
const ROWS = 3075;
let env: BrowserEnv;
test.beforeAll(() => {
  env = browserEnv();
});

/** x[1, ROWS]: a fixed, non-trivial input. */
const input = Array.from({ length: ROWS }, (_, i) => Math.sin(i) * 0.5);

async function secure(page: Page, token: string, backend: "wasm" | "webgpu") {
  return page.evaluate(
    async ({ env, token, backend, input, rows, wasm }) => {
      const w = globalThis as unknown as Record<string, any>;
      const model = await w.mv.loadModel("/test/browser/fixtures-out/ext-v1/manifest.jws", {
        licenseServer: env.licenseServer,
        credential: token,
        publisherKeys: [env.publisherKey],
        wasmPaths: wasm,
        backend,
      });
      const out = await model.run({ x: { data: new Float32Array(input), dims: [1, rows] } });
      await model.dispose();
      return { y: Array.from(out.y.data as Float32Array), backend: model.backend };
    },
    { env, token, backend, input, rows: ROWS, wasm: WASM },
  );
}

async function plain(page: Page, backend: "wasm" | "webgpu") {
  return page.evaluate(
    async ({ base, backend, input, rows }) => {
      const ort = (globalThis as unknown as Record<string, any>).ort;
      const bytes = async (name: string) => new Uint8Array(await (await fetch(base + name)).arrayBuffer());
      const externalData = await Promise.all(
        [0, 1, 2].map(async (i) => ({ path: `ext.onnx.${i}.data`, data: await bytes(`ext.onnx.${i}.data`) })),
      );
      const session = await ort.InferenceSession.create(await bytes("ext.onnx"), {
        executionProviders: [backend],
        externalData,
        graphOptimizationLevel: "all",
      });
      const out = await session.run({ x: new ort.Tensor("float32", new Float32Array(input), [1, rows]) });
      const y = Array.from((out.y.location === "cpu" ? out.y.data : await out.y.getData()) as Float32Array);
      await session.release();
      return y;
    },
    { base: PLAIN, backend, input, rows: ROWS },
  );
}

async function open(page: Page) {
  await page.goto("/test/browser/pages/runtime.html");
  await expect(page).toHaveTitle("runtime ready");
}

test("a model in three external-data files loads on WASM with plain onnxruntime-web's exact outputs", async ({
  page,
}) => {
  const client = await newClient(env, { modelId: "ext" });
  await open(page);
  const got = await secure(page, client.token, "wasm");
  expect(got.backend).toBe("wasm");
  const want = await plain(page, "wasm");
  expect(want).toHaveLength(256);
  expect(got.y).toEqual(want);
});

test("the same model on WebGPU (SwiftShader) equals plain onnxruntime-web on WebGPU", async ({ baseURL }) => {
  test.setTimeout(240_000);
  const client = await newClient(env, { modelId: "ext" });
  const browser = await chromium.launch({
    executablePath: chromiumPath(),
    args: [...CHROMIUM_ARGS, ...WEBGPU_ARGS],
  });
  try {
    const page = await browser.newPage({ baseURL: baseURL as string });
    await open(page);
    const got = await secure(page, client.token, "webgpu");
    expect(got.backend).toBe("webgpu");
    const want = await plain(page, "webgpu");
    expect(got.y).toEqual(want);
  } finally {
    await browser.close();
  }
});
