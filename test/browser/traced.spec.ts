/**
 * Traceable licenses in Chromium (docs/TRACING.md): two devices (two browser profiles) load the
 * same marked package; each runs exactly the copy its codeword selects — bit-identical to plain
 * onnxruntime-web on that copy, which differs from the original only inside the slots — and
 * both stay within tolerance of the unmarked model.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, type Page, test } from "@playwright/test";
import Database from "better-sqlite3";
import { loadDigits } from "../../models/digits/dataset.js";
import { assembleFor, manifestOf, traceSecretOf } from "../tracing/leak-tools.js";
import { type BrowserEnv, browserEnv, newClient } from "./env.js";

const WASM = "/node_modules/onnxruntime-web/dist/";
const OUT = fileURLToPath(new URL("./fixtures-out/", import.meta.url));
let env: BrowserEnv;
test.beforeAll(() => {
  env = browserEnv();
});

const sample = loadDigits().heldOut.slice(0, 100);
const pixels = Array.from(sample.flatMap((d) => Array.from(d.pixels)));

async function loadAndRun(page: Page, token: string) {
  await page.goto("/test/browser/pages/runtime.html");
  await expect(page).toHaveTitle("runtime ready");
  return page.evaluate(
    async ({ env, token, wasm, pixels, n }) => {
      const w = globalThis as unknown as Record<string, any>;
      const progress: string[] = [];
      try {
        const model = await w.mv.loadModel("/test/browser/fixtures-out/digits-traced/manifest.jws", {
          licenseServer: env.licenseServer,
          credential: token,
          publisherKeys: [env.publisherKey],
          wasmPaths: wasm,
          backend: "wasm",
          onProgress: (p: { status: string }) => progress.push(p.status),
        });
        const out = await model.run({ pixels: { data: new Float32Array(pixels), dims: [n, 784] } });
        const device = model.license.deviceJkt as string;
        await model.dispose();
        return { ok: true, device, probs: Array.from(out.probabilities.data as Float32Array), progress };
      } catch (e) {
        return {
          ok: false,
          code: (e as { code?: string }).code ?? String(e),
          progress,
          device: "",
          probs: [],
        };
      }
    },
    { env, token, wasm: WASM, pixels, n: sample.length },
  );
}

async function plainRun(page: Page, path: string): Promise<number[]> {
  return page.evaluate(
    async ({ path, pixels, n }) => {
      const w = globalThis as unknown as Record<string, any>;
      const bytes = new Uint8Array(await (await fetch(path)).arrayBuffer());
      const s = await w.ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
      const out = await s.run({ pixels: new w.ort.Tensor("float32", new Float32Array(pixels), [n, 784]) });
      return Array.from(out.probabilities.data as Float32Array);
    },
    { path, pixels, n: sample.length },
  );
}

test("two devices run their own marked copies: exact per codeword, within tolerance of the unmarked model", async ({
  browser,
}) => {
  const client = await newClient(env, { modelId: "digits-traced" });
  const manifest = manifestOf(await readFile(join(OUT, "digits-traced", "manifest.jws"), "utf8"));
  const secret = await traceSecretOf(join(OUT, "digits-traced.trace-key.json"));
  const original = new Uint8Array(
    await readFile(fileURLToPath(new URL("../../models/digits/digits.onnx", import.meta.url))),
  );
  await mkdir(join(OUT, "traced-copies"), { recursive: true });
  const runs: number[][] = [];
  for (const profile of ["first", "second"]) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const r = await loadAndRun(page, client.token);
    expect(r.ok, JSON.stringify(r)).toBe(true);
    // The codeword the server assigned this device, and the copy the publisher builds for it.
    const db = new Database(join(OUT, "server", "modelvault.sqlite"), { readonly: true });
    const row = db.prepare("select codeword from trace_codewords where device_id = ?").get(r.device) as {
      codeword: string;
    };
    db.close();
    const bits = Uint8Array.from(row.codeword, (c) => (c === "1" ? 1 : 0));
    const copy = await assembleFor(join(OUT, "digits-traced"), manifest, secret, bits, original);
    await writeFile(join(OUT, "traced-copies", `${profile}.onnx`), copy);
    expect(r.probs).toEqual(await plainRun(page, `/test/browser/fixtures-out/traced-copies/${profile}.onnx`));
    const unmarked = await plainRun(page, "/models/digits/digits.onnx");
    const maxDiff = Math.max(...unmarked.map((p, i) => Math.abs(p - (r.probs[i] as number))));
    console.log(
      `${profile} device: max probability difference from the unmarked model ${maxDiff.toExponential(2)}`,
    );
    expect(maxDiff).toBeLessThan(0.05);
    expect(maxDiff).toBeGreaterThan(0);
    runs.push(r.probs);
    await context.close();
  }
  expect(runs[0]).not.toEqual(runs[1]);
});
