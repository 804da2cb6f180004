/**
 * The only module that imports onnxruntime-web. Initialisation settings are applied once;
 * runs on one session are serialised (onnxruntime-web refuses concurrent runs of a session).
 */
import * as ort from "onnxruntime-web";
import { ModelVaultError } from "../src/core/errors.js";
import type { BackendChoice } from "../src/core/progress.js";
import type { Backend, PlainTensor } from "../src/core/worker-protocol.js";

let configured = false;

function configure(wasmPaths: string | undefined, threads: number | undefined): void {
  if (configured) return;
  configured = true;
  if (wasmPaths) ort.env.wasm.wasmPaths = wasmPaths;
  const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
  // Threads need SharedArrayBuffer, which browsers give only to cross-origin isolated pages.
  ort.env.wasm.numThreads =
    threads ?? (isolated ? Math.min(4, globalThis.navigator?.hardwareConcurrency ?? 1) : 1);
  ort.env.logLevel = "error";
}

/** Picks WebGPU when asked for or allowed and an adapter exists, else WASM; says why. */
export async function chooseBackend(preference: Backend): Promise<BackendChoice> {
  const gpu = (globalThis.navigator as { gpu?: { requestAdapter(): Promise<unknown> } } | undefined)?.gpu;
  if (preference === "wasm") return { backend: "wasm", reason: "wasm requested" };
  const adapter = gpu ? await gpu.requestAdapter().catch(() => null) : null;
  if (adapter)
    return {
      backend: "webgpu",
      reason: preference === "webgpu" ? "webgpu requested and available" : "WebGPU adapter available",
    };
  if (preference === "webgpu")
    throw new ModelVaultError("ERR_BACKEND_UNAVAILABLE", "WebGPU was requested but no adapter is available");
  const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
  return {
    backend: "wasm",
    reason: `no WebGPU adapter; WASM ${isolated ? "with threads (cross-origin isolated)" : "single-threaded (not cross-origin isolated)"}`,
  };
}

// A 99-byte Identity model: creating a session from it initialises onnxruntime's wasm, which
// then overlaps with the license request and the downloads instead of following them.
const WARMUP_MODEL =
  "CAgSCm1vZGVsdmF1bHQaAzAuMUIECgAQETpIChwKAXgSAXkaCklkZW50aXR5XzAiCElkZW50aXR5EgZ3YXJtdXBaDwoBeBIKCggIARIECgIIAWIPCgF5EgoKCAgBEgQKAggB";

/** Starts onnxruntime's initialisation for `choice` in the background; never throws. */
export function warmUp(
  choice: BackendChoice,
  wasmPaths: string | undefined,
  threads?: number,
): Promise<void> {
  configure(wasmPaths, threads);
  const bytes = Uint8Array.from(atob(WARMUP_MODEL), (c) => c.charCodeAt(0));
  return ort.InferenceSession.create(bytes, { executionProviders: [choice.backend] }).then(
    (s) => s.release(),
    () => undefined,
  );
}

export class OrtSession {
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(private session: ort.InferenceSession | undefined) {}

  static async create(
    graph: Uint8Array,
    externalData: { path: string; data: Uint8Array }[],
    choice: BackendChoice,
    wasmPaths: string | undefined,
    threads?: number,
  ): Promise<OrtSession> {
    configure(wasmPaths, threads);
    try {
      const session = await ort.InferenceSession.create(graph, {
        executionProviders: [choice.backend],
        ...(externalData.length > 0 ? { externalData } : {}),
        graphOptimizationLevel: "all",
      });
      return new OrtSession(session);
    } catch (e) {
      throw new ModelVaultError(
        "ERR_SESSION_FAILED",
        `could not create the session: ${(e as Error).message}`,
      );
    }
  }

  /** Runs the model; calls are queued so only one run is in flight per session. */
  run(feeds: Record<string, PlainTensor>): Promise<Record<string, PlainTensor>> {
    const next = this.queue.then(async () => {
      if (!this.session) throw new ModelVaultError("ERR_DISPOSED");
      const inputs: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(feeds))
        inputs[name] = new ort.Tensor(t.type as never, t.data as never, t.dims);
      let out: ort.InferenceSession.OnnxValueMapType;
      try {
        out = await this.session.run(inputs);
      } catch (e) {
        throw new ModelVaultError("ERR_SESSION_FAILED", `run failed: ${(e as Error).message}`);
      }
      const result: Record<string, PlainTensor> = {};
      for (const [name, t] of Object.entries(out)) {
        const tensor = t as ort.Tensor;
        const data = tensor.location === "cpu" ? tensor.data : await tensor.getData(true);
        result[name] = { type: tensor.type, data: data as ArrayBufferView, dims: [...tensor.dims] };
      }
      return result;
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Releases the session (idempotent). */
  async release(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    await this.queue;
    await s?.release().catch(() => undefined);
  }
}
