/// <reference lib="webworker" />
// Plain onnxruntime-web in a dedicated Worker of our own making, configured like ModelVault's:
// same runtime files, same thread count, same graph optimisation level.
import * as ort from "onnxruntime-web";

let session: ort.InferenceSession | undefined;

self.onmessage = async ({ data }: MessageEvent) => {
  try {
    if (data.type === "load") {
      ort.env.wasm.wasmPaths = "/ort/";
      ort.env.wasm.numThreads = data.threads;
      ort.env.logLevel = "error";
      const url = new URL(data.url, self.location.href).toString();
      const external = ((data.externalData ?? []) as string[]).map((name) => ({
        path: name,
        data: new URL(name, url).toString(),
      }));
      const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
      session = await ort.InferenceSession.create(bytes, {
        executionProviders: ["wasm"],
        graphOptimizationLevel: "all",
        ...(external.length ? { externalData: external } : {}),
      });
      // Resource Timing of the model's fetches: transferSize 0 means from the HTTP cache.
      const urls = new Set([url, ...external.map((e) => e.data)]);
      const entries = performance.getEntriesByType("resource") as PerformanceResourceTiming[];
      const model = entries.filter((e) => urls.has(e.name));
      postMessage({
        ok: true,
        networkBytes: model.reduce((n, e) => n + e.transferSize, 0),
        networkRequests: model.filter((e) => e.transferSize > 0).length,
      });
    } else if (data.type === "run") {
      const s = session as ort.InferenceSession;
      const n = (data.dims as number[]).reduce((a, b) => a * b, 1);
      const times: number[] = [];
      for (let i = 0; i < data.runs + 3; i++) {
        const x = new ort.Tensor("float32", new Float32Array(n).fill(0.5), data.dims);
        const t = performance.now();
        await s.run({ [data.name]: x });
        if (i >= 3) times.push(performance.now() - t);
      }
      postMessage({ ok: true, median: times.sort((a, b) => a - b)[Math.floor(times.length / 2)] });
    }
  } catch (e) {
    postMessage({ ok: false, error: String(e) });
  }
};
