/// <reference lib="webworker" />
/**
 * The Worker entry: exposes one ModelRuntime over comlink. The content key and all plaintext
 * live only in this worker; the page holds a proxy.
 */
import { Comlink } from "../src/core/comlink-glue.js";
import type { PlainTensor } from "./ort-session.js";
import { type LoadResult, ModelRuntime, type RuntimeCallbacks, type RuntimeLoadOptions } from "./runtime.js";

const runtime = new ModelRuntime();

const api = {
  load(options: RuntimeLoadOptions, callbacks: RuntimeCallbacks): Promise<LoadResult> {
    return runtime.load(options, callbacks);
  },
  async run(feeds: Record<string, PlainTensor>): Promise<Record<string, PlainTensor>> {
    const out = await runtime.run(feeds);
    return Comlink.transfer(
      out,
      Object.values(out).map((t) => t.data.buffer as ArrayBuffer),
    );
  },
  license: () => runtime.licenseState(),
  renew: () => runtime.renew(),
  flushUsage: () => runtime.flushUsage(),
  dispose: () => runtime.dispose(),
};

export type WorkerApi = typeof api;

Comlink.expose(api);
