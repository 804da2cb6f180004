/**
 * What crosses the worker boundary, as types only: the page (src/client) and the worker import
 * this module and nothing of each other's implementation (comlink's `protocol.ts` practice).
 * Everything here must survive structured clone: no functions except the callbacks object,
 * which travels as a comlink proxy.
 */
import type { ErrorCode } from "./error-codes.js";
import type { EcJwk } from "./jwk.js";
import type { TensorInfo } from "./manifest.js";
import type { LoadProgress } from "./progress.js";

/** Which execution provider to use. `"auto"`: WebGPU when an adapter exists, else WASM. */
export type Backend = "auto" | "webgpu" | "wasm";

/** A tensor as it crosses the worker boundary: typed array data moves by transfer. */
export interface PlainTensor {
  type: string;
  data: ArrayBufferView;
  dims: number[];
}

/**
 * Network retries: exponential backoff with jitter from `baseDelayMs`, at most `attempts` tries.
 * A download attempt that stalls (no byte for `idleTimeoutMs`, default 15 s) or trickles
 * (slower than `minBytesPerSecond` on average once `idleTimeoutMs` has passed, default 1 KiB/s)
 * is abandoned and retried: a slow-retrieval server cannot hang the load.
 */
export interface RetryOptions {
  attempts: number;
  baseDelayMs: number;
  idleTimeoutMs?: number;
  minBytesPerSecond?: number;
}

/** The model the app means to load: a manifest for another id, or an older version, is refused. */
export interface ExpectedModel {
  modelId: string;
  /** Lowest acceptable version (default 1). */
  minVersion?: number;
}

/** What the page sends to the worker, every default already resolved (structured-clone safe). */
export interface RuntimeLoadOptions {
  manifestUrl: string;
  licenseServer: string;
  publisherKeys: EcJwk[];
  /**
   * The license server's signing keys the app pins (current and next). Licenses verify only
   * under these; without them the runtime cannot start offline.
   */
  licenseKeys?: EcJwk[];
  expect?: ExpectedModel;
  backend: Backend;
  cache: boolean;
  /** Keep working from cache within the license's offline_until when the server is unreachable. */
  allowOffline: boolean;
  retry: RetryOptions;
  concurrency: number;
  wasmPaths?: string;
  /** WASM threads; default: up to 4 when cross-origin isolated, else 1. */
  threads?: number;
  /** The page's wall clock at load, seconds (the worker then advances it monotonically). */
  wallClock: number;
  /** The page asked for persistent storage (`persistentStorage`): what the browser answered. */
  persisted?: boolean;
  /** Renew when this fraction of the license lifetime has passed (default 0.75). */
  renewAt?: number;
}

/**
 * The page's side of a load, passed to the worker as a comlink proxy. Calls return promises on
 * the worker's side: awaiting them is how the worker knows the page has seen a progress event.
 */
export interface RuntimeCallbacks {
  progress(p: LoadProgress): unknown;
  event(e: RuntimeEvent): unknown;
  credential(): Promise<string>;
}

/** The license as the page sees it. Times in seconds since the epoch. */
export interface LicenseState {
  licenseId: string;
  deviceJkt: string;
  expiresAt: number;
  offlineUntil: number | null;
  scopes: string[];
  allowance: number;
  used: number;
  remaining: number;
  offline: boolean;
  renewals: number;
  /** The refusal's code once the server has refused this device or license; null while usable. */
  revoked: ErrorCode | null;
}

/** Events the worker raises after loading; `SecureModel` dispatches each as a `CustomEvent`. */
export type RuntimeEvent =
  | { type: "license-renewed"; license: LicenseState }
  | { type: "license-expiring"; license: LicenseState; reason: string }
  | { type: "license-revoked"; code: ErrorCode; message: string }
  | { type: "usage-flushed"; sent: number; pending: number }
  | { type: "error"; code: string; message: string };

/** What a finished load tells the page. */
export interface LoadResult {
  modelId: string;
  version: number;
  publisherKid: string;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  backend: "webgpu" | "wasm";
  backendReason: string;
  license: LicenseState;
}

/** What a load's background cache writes came to (`SecureModel.whenCached()`). */
export interface CacheReport {
  /** True when every shard of the model is in the cache: a reload needs no download. */
  complete: boolean;
  /** Shards this load wrote, and their bytes. */
  stored: number;
  bytes: number;
  /** Why caching was skipped or stopped, when it was. */
  skipped?: string;
}

/** The worker's API, as exposed over comlink. */
export interface WorkerApi {
  /**
   * Takes the Web Lock `name` for the worker's whole life and resolves once it holds it: the
   * page then waits for the same lock, which it is granted only when the worker is gone.
   */
  holdLifeLock(name: string): Promise<void>;
  load(options: RuntimeLoadOptions, callbacks: RuntimeCallbacks): Promise<LoadResult>;
  run(feeds: Record<string, PlainTensor>): Promise<Record<string, PlainTensor>>;
  license(): Promise<LicenseState>;
  renew(): Promise<LicenseState>;
  flushUsage(): Promise<{ sent: number; pending: number }>;
  /** Settles when the load's cache writes have; null when the load used no cache. */
  whenCached(): Promise<CacheReport | null>;
  dispose(): Promise<void>;
}
