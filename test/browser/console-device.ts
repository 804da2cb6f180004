/** A device for the console specs: the runtime page in its own browser context (its own keys). */
import { type Browser, type BrowserContext, expect, type Page } from "@playwright/test";
import type { Digit } from "../../models/digits/dataset.js";

const WASM = "/node_modules/onnxruntime-web/dist/";

export interface TestDevice {
  context: BrowserContext;
  page: Page;
  /** The device's key thumbprint: its id on the server. */
  id: string;
  /** Runs these digits in batches of 100; returns the arg-max class of each. */
  run(digits: readonly Digit[]): Promise<number[]>;
  flush(): Promise<{ sent: number; pending: number }>;
  /** Renews now; resolves "renewed" or the error code. */
  renew(): Promise<string>;
}

export async function openDevice(
  browser: Browser,
  o: { licenseServer: string; credential: string; manifest: string; publisherKey: Record<string, string> },
): Promise<TestDevice> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto("/test/browser/pages/runtime.html");
  await expect(page).toHaveTitle("runtime ready");
  const loaded = await page.evaluate(
    async ({ o, wasm }) => {
      const w = globalThis as unknown as Record<string, any>;
      try {
        w.model = await w.mv.loadModel(o.manifest, {
          licenseServer: o.licenseServer,
          credential: o.credential,
          publisherKeys: [o.publisherKey],
          wasmPaths: wasm,
          backend: "wasm",
        });
        return { ok: true, id: w.model.license.deviceJkt as string };
      } catch (e) {
        return { ok: false, id: "", code: (e as { code?: string }).code ?? String(e) };
      }
    },
    { o, wasm: WASM },
  );
  expect(loaded.ok, JSON.stringify(loaded)).toBe(true);
  return {
    context,
    page,
    id: loaded.id,
    async run(digits) {
      const classes: number[] = [];
      for (let i = 0; i < digits.length; i += 100) {
        const batch = digits.slice(i, i + 100);
        const pixels = batch.flatMap((d) => Array.from(d.pixels));
        const probs = await page.evaluate(
          async ({ pixels, n }) => {
            const w = globalThis as unknown as Record<string, any>;
            const out = await w.model.run({ pixels: { data: new Float32Array(pixels), dims: [n, 784] } });
            return Array.from(out.probabilities.data as Float32Array);
          },
          { pixels, n: batch.length },
        );
        for (let r = 0; r < batch.length; r++) {
          const row = probs.slice(r * 10, r * 10 + 10);
          classes.push(row.indexOf(Math.max(...row)));
        }
      }
      return classes;
    },
    flush: () => page.evaluate(() => (globalThis as unknown as Record<string, any>).model.flushUsage()),
    renew: () =>
      page.evaluate(() =>
        (globalThis as unknown as Record<string, any>).model.renew().then(
          () => "renewed",
          (e: { code?: string }) => e.code ?? String(e),
        ),
      ),
  };
}
