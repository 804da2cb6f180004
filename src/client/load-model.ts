import { Comlink, installErrorTransfer } from "../core/comlink-glue.js";
import { ModelVaultError } from "../core/errors.js";
import { checkEcJwk } from "../core/jwk.js";
import type { LoadProgress } from "../core/progress.js";
import type { RuntimeEvent, WorkerApi } from "../core/worker-protocol.js";
import type { LoadModelOptions } from "./options.js";
import { SecureModel } from "./secure-model.js";
import { type Lifeline, watchWorker } from "./worker-lifeline.js";

/**
 * The worker, located the way Vite, webpack 5, Rollup and esbuild all follow and bundle:
 * `new Worker(new URL(…, import.meta.url), { type: "module" })`. In the package the build
 * rewrites this source path to the prebuilt `./worker.js` beside the client entry.
 */
function startWorker(url: string | URL | undefined): Worker {
  if (url) return new Worker(url, { type: "module" });
  return new Worker(new URL("../../worker/worker.ts", import.meta.url), { type: "module" });
}

/**
 * Loads a protected model: starts a Worker that verifies the manifest against your pinned
 * publisher keys, obtains a device-bound license, decrypts the shards inside Web Crypto and
 * creates an onnxruntime-web session. Resolves when the model is ready to run.
 *
 * @example
 * import { loadModel } from "modelvault";
 * const model = await loadModel("https://cdn.example/models/digits/manifest.jws", {
 *   licenseServer: "https://licenses.example",
 *   credential: () => getApiKey(),
 *   publisherKeys: [publisherJwk],
 *   onProgress: (p) => console.log(p.status),
 * });
 */
export async function loadModel(manifestUrl: string, options: LoadModelOptions): Promise<SecureModel> {
  // A wrong key fails here, coded, before a worker starts or a license is spent.
  const publisherKeys = options.publisherKeys.map((k) => checkEcJwk(k, false, "publisher key"));
  const licenseKeys = options.licenseKeys?.map((k) => checkEcJwk(k, false, "license key", "sig"));
  installErrorTransfer();
  // persist() exists only on the page (not in workers); asked before the worker plans its cache.
  const persisted = options.persistentStorage
    ? await globalThis.navigator?.storage?.persist?.().catch(() => false)
    : undefined;
  const worker = startWorker(options.workerUrl);
  const api = Comlink.wrap<WorkerApi>(worker);
  let model: SecureModel | undefined;
  const events: RuntimeEvent[] = [];
  const credential = options.credential;
  const callbacks = Comlink.proxy({
    progress: (p: LoadProgress) => options.onProgress?.(p),
    event: (e: RuntimeEvent) => (model ? model.dispatch(e) : events.push(e)),
    credential: async () => (typeof credential === "function" ? await credential() : credential),
  });
  let lifeline: Lifeline | undefined;
  const abort = () => {
    lifeline?.release();
    worker.terminate();
  };
  options.signal?.addEventListener("abort", abort);
  const aborted = new Promise<never>((_, reject) =>
    options.signal?.addEventListener("abort", () => reject(new ModelVaultError("ERR_ABORTED"))),
  );
  // A worker script that cannot load (offline without a cached app shell) fires "error" and
  // nothing else: without this the load would wait forever.
  const failed = new Promise<never>((_, reject) =>
    worker.addEventListener("error", (e) =>
      reject(new ModelVaultError("ERR_NETWORK", `the worker failed to start: ${e.message ?? "unreachable"}`)),
    ),
  );
  for (const p of [aborted, failed]) p.catch(() => undefined);
  try {
    if (options.signal?.aborted) throw new ModelVaultError("ERR_ABORTED");
    lifeline = await Promise.race([watchWorker(api), aborted, failed]);
    const loading = api.load(
      {
        manifestUrl: new URL(manifestUrl, globalThis.location?.href).toString(),
        licenseServer: options.licenseServer,
        publisherKeys,
        ...(licenseKeys ? { licenseKeys } : {}),
        ...(options.expect ? { expect: { ...options.expect } } : {}),
        backend: options.backend ?? "auto",
        cache: options.cache ?? true,
        allowOffline: options.allowOffline ?? true,
        retry: {
          attempts: options.retry?.attempts ?? 4,
          baseDelayMs: options.retry?.baseDelayMs ?? 250,
          idleTimeoutMs: options.retry?.idleTimeoutMs ?? 15_000,
          minBytesPerSecond: options.retry?.minBytesPerSecond ?? 1024,
        },
        concurrency: options.concurrency ?? 4,
        wasmPaths: options.wasmPaths ?? "/ort/",
        ...(options.threads !== undefined ? { threads: options.threads } : {}),
        ...(persisted !== undefined ? { persisted } : {}),
        wallClock: Math.floor(Date.now() / 1000),
      },
      callbacks,
    );
    const loaded = await Promise.race([loading, aborted, failed, lifeline.lost]);
    const life = lifeline;
    const close = () => {
      life.release();
      api[Comlink.releaseProxy]();
      worker.terminate();
    };
    model = new SecureModel(api, close, loaded, life.lost);
    for (const e of events) model.dispatch(e);
    return model;
  } catch (e) {
    lifeline?.release();
    worker.terminate();
    throw e;
  } finally {
    options.signal?.removeEventListener("abort", abort);
  }
}
