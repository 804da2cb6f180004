/// <reference lib="webworker" />
/**
 * The Worker entry: exposes one ModelRuntime over comlink. The content key and all plaintext
 * live only in this worker; the page holds a proxy.
 */
import { Comlink, installErrorTransfer } from "../src/core/comlink-glue.js";
import type { LoadProgress } from "../src/core/progress.js";
import type { RuntimeCallbacks, WorkerApi } from "../src/core/worker-protocol.js";
import { ModelRuntime } from "./runtime.js";

const runtime = new ModelRuntime();

/**
 * Progress travels on the callbacks' own message channel, the load's result on the worker's:
 * the two are not ordered. Each progress call resolves once the page has run it, so awaiting
 * them all before answering delivers every progress event before `loadModel()` settles.
 */
async function withDeliveredProgress<T>(
  callbacks: RuntimeCallbacks,
  task: (callbacks: RuntimeCallbacks) => Promise<T>,
): Promise<T> {
  const sent: Promise<unknown>[] = [];
  const tracked: RuntimeCallbacks = {
    progress: (p: LoadProgress) => {
      sent.push(Promise.resolve(callbacks.progress(p)).catch(() => undefined));
    },
    event: (e) => callbacks.event(e),
    credential: () => callbacks.credential(),
  };
  try {
    return await task(tracked);
  } finally {
    await Promise.all(sent);
  }
}

const api: WorkerApi = {
  holdLifeLock: (name) =>
    new Promise<void>((held) => {
      // Never released by us: the browser releases it when this worker ends, however it ends.
      void navigator.locks.request(name, () => {
        held();
        return new Promise<never>(() => {});
      });
    }),
  load: (options, callbacks) => withDeliveredProgress(callbacks, (c) => runtime.load(options, c)),
  async run(feeds) {
    const out = await runtime.run(feeds);
    return Comlink.transfer(
      out,
      Object.values(out).map((t) => t.data.buffer as ArrayBuffer),
    );
  },
  license: async () => runtime.licenseState(),
  renew: () => runtime.renew(),
  flushUsage: () => runtime.flushUsage(),
  whenCached: () => runtime.whenCached(),
  dispose: () => runtime.dispose(),
};

installErrorTransfer();
Comlink.expose(api);
