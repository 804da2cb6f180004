/**
 * One side's measurement in a fresh on-disk Chromium profile: the cold load (and per-run
 * latency and peak renderer memory, unless the network is throttled), then, when asked, a
 * reload for the warm load, which must have come from the cache.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "@playwright/test";
import { CHROMIUM_ARGS, chromiumPath } from "../../test/browser/chromium.js";
import type { BenchModel, BenchSetup } from "./fixtures.js";
import { rendererPeakBytes } from "./renderer-memory.js";

export type Side = "secure" | "plain";

/** What bench/load/app's pages expose (see its src/bench-api.ts). */
interface PageBench {
  bench: {
    load(config: unknown): Promise<{
      ms: number;
      networkBytes: number;
      networkRequests: number;
      threads: number;
      isolated: boolean;
    }>;
    run(name: string, dims: readonly number[], runs: number): Promise<number>;
  };
}

export interface Sample {
  cold: number;
  warm?: number;
  run?: number;
  memory?: number;
  threads: number;
  isolated: boolean;
}

export interface MeasureOptions {
  /** CDP Network.emulateNetworkConditions; none for loopback. */
  conditions?:
    | { offline: boolean; latency: number; downloadThroughput: number; uploadThroughput: number }
    | undefined;
  threads: number;
  /** Runs for the per-run median (0: none). */
  runs: number;
  warm?: boolean;
  /** The secure side's IndexedDB cache (default on, as loadModel's). */
  cache?: boolean;
}

export async function measure(
  setup: BenchSetup,
  side: Side,
  model: BenchModel,
  o: MeasureOptions,
): Promise<Sample> {
  const dir = await mkdtemp(join(tmpdir(), `modelvault-bench-${side}-`));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: chromiumPath(),
    args: [...CHROMIUM_ARGS, "--disable-gpu"],
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    if (o.conditions) {
      const cdp = await context.newCDPSession(page);
      await cdp.send("Network.enable");
      await cdp.send("Network.emulateNetworkConditions", o.conditions);
    }
    const config = {
      ...setup.config,
      url: side === "secure" ? `/models/${model.id}/manifest.jws` : model.plain,
      externalData: model.externalData,
      threads: o.threads,
      cache: o.cache ?? true,
    };
    const open = () => page.waitForFunction("document.title === 'ready'", null, { timeout: 60_000 });
    const load = () => page.evaluate((c) => (globalThis as unknown as PageBench).bench.load(c), config);
    await page.goto(`${setup.origin}/${side}.html`);
    await open();
    const cold = await load();
    if (cold.networkBytes === 0) throw new Error(`${side} cold load of ${model.id} fetched nothing`);
    const run =
      o.conditions || o.runs === 0
        ? undefined
        : await page.evaluate(
            ([name, dims, runs]) => (globalThis as unknown as PageBench).bench.run(name, dims, runs),
            [model.input, model.dims, o.runs] as const,
          );
    const memory = o.conditions ? undefined : rendererPeakBytes(dir);
    let warm: number | undefined;
    if (o.warm !== false) {
      await page.reload();
      await open();
      const again = await load();
      if (again.networkRequests !== 0 || again.networkBytes !== 0)
        throw new Error(
          `${side} warm load of ${model.id} was not served from cache: ${again.networkRequests} requests, ${again.networkBytes} bytes`,
        );
      warm = again.ms;
    }
    return {
      cold: cold.ms,
      ...(warm !== undefined ? { warm } : {}),
      ...(run !== undefined ? { run } : {}),
      ...(memory !== undefined ? { memory } : {}),
      threads: cold.threads,
      isolated: cold.isolated,
    };
  } finally {
    await context.close();
    await rm(dir, { recursive: true, force: true });
  }
}
