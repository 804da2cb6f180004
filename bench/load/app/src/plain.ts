import type { BenchApi, LoadConfig } from "./bench-api.js";

let worker: Worker | undefined;

function call<T>(message: object): Promise<T> {
  const w = worker as Worker;
  return new Promise((resolve, reject) => {
    w.onmessage = ({ data }) => (data.ok ? resolve(data as T) : reject(new Error(data.error)));
    w.postMessage(message);
  });
}

const api: BenchApi = {
  async load(config: LoadConfig) {
    const t = performance.now();
    // Created at load time, as loadModel creates its worker: both sides pay for a worker start.
    worker = new Worker(new URL("./plain-worker.ts", import.meta.url), { type: "module" });
    const r = await call<{ networkBytes: number; networkRequests: number }>({
      type: "load",
      url: config.url,
      externalData: config.externalData ?? [],
      threads: config.threads,
    });
    return {
      ms: performance.now() - t,
      ...r,
      threads: config.threads,
      isolated: globalThis.crossOriginIsolated === true,
      backend: "wasm",
    };
  },
  async run(name, dims, runs) {
    return (await call<{ median: number }>({ type: "run", name, dims, runs })).median;
  },
};
window.bench = api;
document.title = "ready";
