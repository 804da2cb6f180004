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
      // One run per message, input transferred in and output transferred back: what an app
      // running plain onnxruntime-web in its own worker does, and what loadModel's run() does.
      const s = session as ort.InferenceSession;
      const out = await s.run({ [data.name]: new ort.Tensor("float32", data.data, data.dims) });
      const outputs = Object.values(out).map((t) => t.data as Float32Array);
      postMessage(
        { ok: true, outputs },
        outputs.map((o) => o.buffer as ArrayBuffer),
      );
    }
  } catch (e) {
    postMessage({ ok: false, error: String(e) });
  }
};
