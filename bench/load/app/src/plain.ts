import type { BenchApi, LoadConfig } from "./bench-api.js";

let worker: Worker | undefined;

function call<T>(message: object, transfer: Transferable[] = []): Promise<T> {
  const w = worker as Worker;
  return new Promise((resolve, reject) => {
    w.onmessage = ({ data }) => (data.ok ? resolve(data as T) : reject(new Error(data.error)));
    w.postMessage(message, transfer);
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
  // Timed from the page, one message per run, exactly as the secure side's run() is.
  async run(name, dims, runs) {
    const n = dims.reduce((a, b) => a * b, 1);
    const times: number[] = [];
    for (let i = 0; i < runs + 3; i++) {
      const data = new Float32Array(n).fill(0.5);
      const t = performance.now();
      await call({ type: "run", name, dims, data }, [data.buffer]);
      if (i >= 3) times.push(performance.now() - t);
    }
    return times.sort((a, b) => a - b)[Math.floor(times.length / 2)] as number;
  },
};
window.bench = api;
document.title = "ready";
