import { Comlink } from "../core/comlink-glue.js";
import { ModelVaultError } from "../core/errors.js";
import type { TensorInfo } from "../core/manifest.js";
import type {
  CacheReport,
  LicenseState,
  LoadResult,
  PlainTensor,
  RuntimeEvent,
  WorkerApi,
} from "../core/worker-protocol.js";

/** An input tensor: an onnxruntime-web Tensor, or `{ data, dims }` (type from the typed array). */
export type TensorLike = { data: ArrayBufferView; dims: readonly number[]; type?: string };

const TYPE_OF: Record<string, string> = {
  Float32Array: "float32",
  Float64Array: "float64",
  Int8Array: "int8",
  Uint8Array: "uint8",
  Int16Array: "int16",
  Uint16Array: "uint16",
  Int32Array: "int32",
  Uint32Array: "uint32",
  BigInt64Array: "int64",
  BigUint64Array: "uint64",
};

type EventOf<T extends RuntimeEvent["type"]> = Extract<RuntimeEvent, { type: T }>;

/**
 * The events a {@link SecureModel} dispatches, each a `CustomEvent` whose `detail` is the
 * worker's {@link RuntimeEvent} of that type.
 */
export interface SecureModelEventMap {
  "license-renewed": CustomEvent<EventOf<"license-renewed">>;
  "license-expiring": CustomEvent<EventOf<"license-expiring">>;
  "license-revoked": CustomEvent<EventOf<"license-revoked">>;
  "usage-flushed": CustomEvent<EventOf<"usage-flushed">>;
  error: CustomEvent<EventOf<"error">>;
}

type Listener<K extends keyof SecureModelEventMap> =
  | ((this: SecureModel, event: SecureModelEventMap[K]) => unknown)
  | { handleEvent(event: SecureModelEventMap[K]): unknown };

// Declaration merging types the listeners: `e.detail.code` type-checks for "license-revoked".
export interface SecureModel {
  addEventListener<K extends keyof SecureModelEventMap>(
    type: K,
    listener: Listener<K> | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  removeEventListener<K extends keyof SecureModelEventMap>(
    type: K,
    listener: Listener<K> | null,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;
}

/**
 * A model running in its own Worker. The page never holds the weights or the content key.
 *
 * Events (`addEventListener`, typed by {@link SecureModelEventMap}): `license-renewed`,
 * `license-expiring`, `license-revoked`, `usage-flushed`, `error`; each a `CustomEvent` whose
 * `detail` is the {@link RuntimeEvent}.
 *
 * @example
 * const model = await loadModel("/models/digits/manifest.jws", options);
 * const { probabilities } = await model.run({ pixels: { data: new Float32Array(784), dims: [1, 784] } });
 * model.addEventListener("license-revoked", (e) => showUpsell(e.detail.code));
 * await model.dispose();
 */
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the merged interface only narrows EventTarget's listener types
export class SecureModel extends EventTarget {
  readonly modelId: string;
  readonly version: number;
  readonly publisherKid: string;
  /** Input and output names, element types and shapes, from the signed manifest. */
  readonly inputs: readonly TensorInfo[];
  readonly outputs: readonly TensorInfo[];
  /** The backend in use and why it was chosen. */
  readonly backend: "webgpu" | "wasm";
  readonly backendReason: string;
  private current: LicenseState;
  private disposed: Promise<void> | undefined;

  /** @internal Created by loadModel(). */
  constructor(
    private readonly api: WorkerApi,
    private readonly close: () => void,
    loaded: LoadResult,
    /** Rejects with ERR_WORKER_CRASHED if the worker dies: every call races it, none hangs. */
    private readonly lost: Promise<never>,
  ) {
    super();
    this.modelId = loaded.modelId;
    this.version = loaded.version;
    this.publisherKid = loaded.publisherKid;
    this.inputs = loaded.inputs;
    this.outputs = loaded.outputs;
    this.backend = loaded.backend;
    this.backendReason = loaded.backendReason;
    this.current = loaded.license;
  }

  private guard<T>(call: Promise<T>): Promise<T> {
    return Promise.race([call, this.lost]);
  }

  /** @internal Worker events arrive here. */
  dispatch(e: RuntimeEvent): void {
    if (e.type === "license-renewed" || e.type === "license-expiring") this.current = e.license;
    if (e.type === "license-revoked") this.current = { ...this.current, revoked: e.code };
    this.dispatchEvent(new CustomEvent(e.type, { detail: e }));
  }

  /** The license as last seen: expiry, offline allowance, scopes, remaining quota. */
  get license(): LicenseState {
    return this.current;
  }

  /**
   * Runs the model. Inputs are checked against the manifest (names, types, dims, finite values).
   * Input buffers are transferred to the worker, not copied: they are detached afterwards.
   * Throws a ModelVaultError whose `code` says why (`ERR_LICENSE_EXPIRED`, `ERR_LICENSE_REVOKED`, …).
   */
  async run(feeds: Record<string, TensorLike>): Promise<Record<string, PlainTensor>> {
    if (this.disposed) throw new ModelVaultError("ERR_DISPOSED");
    const plain: Record<string, PlainTensor> = {};
    const transfers: ArrayBuffer[] = [];
    for (const [name, t] of Object.entries(feeds)) {
      const type = t.type ?? TYPE_OF[t.data.constructor.name] ?? "unknown";
      plain[name] = { type, data: t.data, dims: [...t.dims] };
      if (t.data.buffer instanceof ArrayBuffer && !transfers.includes(t.data.buffer))
        transfers.push(t.data.buffer);
    }
    const out = await this.guard(this.api.run(Comlink.transfer(plain, transfers)));
    this.current = {
      ...this.current,
      used: this.current.used + 1,
      remaining: Math.max(0, this.current.remaining - 1),
    };
    return out;
  }

  /** Fetches the worker's current license state. */
  async refreshLicense(): Promise<LicenseState> {
    this.current = await this.guard(this.api.license());
    return this.current;
  }

  /** Renews the license now (normally automatic at 75% of its lifetime). */
  async renew(): Promise<LicenseState> {
    this.current = await this.guard(this.api.renew());
    return this.current;
  }

  /** Sends pending usage reports now; resolves with how many the server acknowledged and how many wait. */
  flushUsage(): Promise<{ sent: number; pending: number }> {
    return this.guard(this.api.flushUsage());
  }

  /**
   * Settles when the load's cache writes have: the model is ready before IndexedDB has written
   * its ciphertext, so an app that wants an offline-ready copy (or a reload with no download)
   * waits for this. Null when the load used no cache.
   */
  whenCached(): Promise<CacheReport | null> {
    if (this.disposed) throw new ModelVaultError("ERR_DISPOSED");
    return this.api.whenCached();
  }

  /** Stops timers, flushes usage, releases the session and key, ends the worker. Idempotent. */
  dispose(): Promise<void> {
    this.disposed ??= (async () => {
      await this.guard(this.api.dispose()).catch(() => undefined);
      this.close();
    })();
    return this.disposed;
  }
}
