import type { JwkInput } from "../core/jwk.js";
import type { LoadProgress } from "../core/progress.js";

/** Options for {@link loadModel}. Only `licenseServer`, `credential` and `publisherKeys` are required. */
export interface LoadModelOptions {
  /** Base URL of the license server, e.g. `https://licenses.example.com`. Plain http only on localhost. */
  licenseServer: string;
  /** API key or OIDC ID token; a function is called for every request, for tokens that rotate. */
  credential: string | (() => string | Promise<string>);
  /**
   * Publisher public keys (P-256 JWKs, e.g. `import key from "./publisher.public.jwk.json"`) the
   * manifest must be signed by. Pinned: nothing else is trusted. Checked before the worker starts.
   */
  publisherKeys: readonly JwkInput[];
  /**
   * The model this page means to load. A manifest for another model id, or a version below
   * `minVersion`, is refused with `ERR_MODEL_MISMATCH`, even when your publisher key signed it
   * and the user is entitled to it (a mirror or CDN substituting one of your models for another).
   */
  expect?: { modelId: string; minVersion?: number };
  /**
   * The license server's signing keys (P-256 JWKs: its current and next key, from
   * `/.well-known/jwks.json`), pinned like publisher keys. Licenses verify only under these,
   * and starting offline from a cached license needs them: without pinned keys there is no
   * offline start. Rotation: see README, "Rotating the license signing key".
   */
  licenseKeys?: readonly JwkInput[];
  /** `"auto"` (default) uses WebGPU when an adapter exists, else WASM. */
  backend?: "auto" | "webgpu" | "wasm";
  /** Every load step, as one discriminated union (see {@link LoadProgress}). */
  onProgress?: (event: LoadProgress) => void;
  /** Keep ciphertext shards and the signed manifest in IndexedDB for reloads and offline starts (default true). */
  cache?: boolean;
  /**
   * Ask the browser to keep this origin's storage (`navigator.storage.persist()`) so the cache
   * is not evicted under storage pressure (default false: browsers may prompt or decide by
   * engagement). The answer is reported in the `storage` progress event.
   */
  persistentStorage?: boolean;
  /** When the license server is unreachable, run from cache within the license's offline allowance (default true). */
  allowOffline?: boolean;
  /** Cancels the load. */
  signal?: AbortSignal;
  /**
   * Network retries with exponential backoff (default 4 attempts from 250 ms). A manifest or
   * shard download that sends no byte for `idleTimeoutMs` (default 15 s), or averages under
   * `minBytesPerSecond` (default 1024) once that time has passed, is cut and retried.
   */
  retry?: { attempts?: number; baseDelayMs?: number; idleTimeoutMs?: number; minBytesPerSecond?: number };
  /** Parallel shard downloads (default 4). */
  concurrency?: number;
  /**
   * Where onnxruntime-web's .wasm/.mjs files are served from, self-hosted (default `/ort/`).
   * Never a CDN unless you point it at one.
   */
  wasmPaths?: string;
  /** WASM threads (default: up to 4 when the page is cross-origin isolated, else 1). */
  threads?: number;
  /** The worker script, for bundlers that cannot follow `new URL(…, import.meta.url)`. */
  workerUrl?: string | URL;
}
