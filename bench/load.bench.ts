/**
 * `npm run bench:load`: in headless Chromium, against the same files on the same server, in one
 * run: cold secure load vs plain onnxruntime-web load (fetch + session); warm (IndexedDB cache)
 * secure load vs plain load from the HTTP cache; and per-run latency vs plain onnxruntime-web in
 * its own proxy worker. For the digits model and a 64 MB synthetic model. Medians of several
 * rounds; targets (issue #4): cold <= 1.10x, warm <= 1.10x, per-run <= 1.05x.
 */
import { spawn } from "node:child_process";
import { type BrowserContext, chromium, type Page } from "@playwright/test";
import { CHROMIUM_ARGS, chromiumPath } from "../test/browser/chromium.js";
import { browserEnv, newClient } from "../test/browser/env.js";

const PORT = 5399;
const ROUNDS = Number(process.env.MODELVAULT_BENCH_ROUNDS ?? 5);
const RUNS = Number(process.env.MODELVAULT_BENCH_RUNS ?? 50);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

const server = spawn(
  process.execPath,
  ["--import", "tsx", "test/browser/serve.ts", String(PORT), String(PORT + 100)],
  {
    env: { ...process.env, MODELVAULT_BENCH_SYNTHETIC: "1" },
    stdio: ["ignore", "pipe", "inherit"],
  },
);
await new Promise<void>((resolve) =>
  server.stdout?.on("data", (d) => String(d).includes("test pages on") && resolve()),
);
const env = browserEnv();
const browser = await chromium.launch({
  executablePath: chromiumPath(),
  args: [...CHROMIUM_ARGS, "--disable-gpu"],
});

interface Model {
  name: string;
  id: string;
  manifest: string;
  plain: string;
  input: string;
  dims: number[];
}
const MODELS: Model[] = [
  {
    name: "digits (398 KiB)",
    id: "digits",
    manifest: "/test/browser/fixtures-out/digits-v1/manifest.jws",
    plain: "/models/digits/digits.onnx",
    input: "pixels",
    dims: [1, 784],
  },
  {
    name: "synthetic (64 MiB)",
    id: "synthetic-64m",
    manifest: "/test/browser/fixtures-out/synthetic-64m/manifest.jws",
    plain: "/test/browser/fixtures-out/synthetic-64m.onnx",
    input: "x",
    dims: [1, 65536],
  },
];

async function openPage(context: BrowserContext): Promise<Page> {
  const p = await context.newPage();
  await p.goto("/test/browser/pages/runtime.html");
  await p.waitForFunction("document.title === 'runtime ready'");
  return p;
}

const secureLoad = (p: Page, m: Model, token: string) =>
  p.evaluate(
    async ({ m, env, token }) => {
      const w = globalThis as unknown as Record<string, any>;
      await w.model?.dispose();
      const t = performance.now();
      w.model = await w.mv.loadModel(m.manifest, {
        licenseServer: env.licenseServer,
        credential: token,
        publisherKeys: [env.publisherKey],
        wasmPaths: "/node_modules/onnxruntime-web/dist/",
        backend: "wasm",
      });
      return performance.now() - t;
    },
    { m, env, token },
  );

const plainLoad = (p: Page, m: Model) =>
  p.evaluate(async (m) => {
    const w = globalThis as unknown as Record<string, any>;
    w.ort.env.wasm.proxy = true; // plain onnxruntime-web in its own worker, as ours runs in one
    await w.plain?.release();
    const t = performance.now();
    const bytes = new Uint8Array(await (await fetch(m.plain)).arrayBuffer());
    w.plain = await w.ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
    return performance.now() - t;
  }, m);

const perRun = (p: Page, m: Model, which: "secure" | "plain", runs: number) =>
  p.evaluate(
    async ({ m, which, runs }) => {
      const w = globalThis as unknown as Record<string, any>;
      const n = m.dims.reduce((a, b) => a * b, 1);
      const times: number[] = [];
      for (let i = 0; i < runs + 5; i++) {
        const x = new Float32Array(n).fill(0.5);
        const t = performance.now();
        if (which === "secure") await w.model.run({ [m.input]: { data: x, dims: m.dims } });
        else await w.plain.run({ [m.input]: new w.ort.Tensor("float32", x, m.dims) });
        if (i >= 5) times.push(performance.now() - t);
      }
      return times.sort((a, b) => a - b)[Math.floor(times.length / 2)] as number;
    },
    { m, which, runs },
  );

try {
  for (const m of MODELS) {
    const client = await newClient(env, {
      modelId: m.id,
      maxDevices: 1000,
      quota: 1e9,
      licenseAllowance: 1e8,
    });
    const cold = { secure: [] as number[], plain: [] as number[] };
    const warm = { secure: [] as number[], plain: [] as number[] };
    const run = { secure: [] as number[], plain: [] as number[] };
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which goes first, so neither always meets a warmer machine.
      const order: ("secure" | "plain")[] = round % 2 ? ["plain", "secure"] : ["secure", "plain"];
      for (const which of order) {
        // Cold: a fresh profile. Warm: a reload in the same profile (IndexedDB / HTTP cache kept).
        const context = await browser.newContext({ baseURL: `http://127.0.0.1:${PORT}` });
        const load = (p: Page) => (which === "secure" ? secureLoad(p, m, client.token) : plainLoad(p, m));
        const first = await openPage(context);
        cold[which].push(await load(first));
        run[which].push(await perRun(first, m, which, RUNS));
        await first.close();
        const second = await openPage(context);
        warm[which].push(await load(second));
        await context.close();
      }
    }
    const line = (label: string, x: { secure: number[]; plain: number[] }, target: number) => {
      const s = median(x.secure);
      const pl = median(x.plain);
      console.log(
        `${m.name} ${label}: secure ${s.toFixed(2)} ms, plain ${pl.toFixed(2)} ms, ratio ${(s / pl).toFixed(2)} (target <= ${target})`,
      );
    };
    line("cold load", cold, 1.1);
    line("warm load", warm, 1.1);
    line("per run  ", run, 1.05);
  }
} finally {
  await browser.close();
  server.kill("SIGTERM");
}
