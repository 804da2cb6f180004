/**
 * A backend that works, not just one that loads. onnxruntime-web's WebGPU backend creates
 * sessions for some models it then cannot run (MaxPool with ceil_mode, for one), so a WebGPU
 * session is tried once on inputs made from the manifest's signature while the plaintext is
 * still here; when that fails, and the same trial passes on WASM (so the inputs were not the
 * problem), the model is loaded on WASM instead and `backendReason` says why. The outcome is
 * remembered per model digest and device, so only a model's first load there pays for the trial.
 */
import { ModelVaultError } from "../src/core/errors.js";
import type { TensorInfo } from "../src/core/manifest.js";
import type { BackendChoice } from "../src/core/progress.js";
import type { Backend, PlainTensor } from "../src/core/worker-protocol.js";
import { OrtSession } from "./ort-session.js";
import type { Storage } from "./storage.js";
import { TYPED_ARRAYS } from "./validate-inputs.js";

type Remembered = { ok: true } | { ok: false; reason: string };

/** Zero inputs shaped by the signature (symbolic dims as 1); undefined when a type has no zero here. */
export function trialFeeds(signature: TensorInfo[]): Record<string, PlainTensor> | undefined {
  const feeds: Record<string, PlainTensor> = {};
  for (const info of signature) {
    const array = TYPED_ARRAYS[info.type];
    if (!array) return undefined;
    const dims = info.shape.map((d) => (typeof d === "number" ? d : 1));
    feeds[info.name] = { type: info.type, data: new array(dims.reduce((a, b) => a * b, 1)), dims };
  }
  return feeds;
}

export interface CheckedSessionInput {
  graph: Uint8Array;
  external: { path: string; data: Uint8Array }[];
  choice: BackendChoice;
  preference: Backend;
  wasmPaths: string | undefined;
  threads: number | undefined;
  signature: TensorInfo[];
  storage: Storage | undefined;
  /** Model digest and device: what the remembered outcome is keyed on. */
  memo: string;
}

/** Creates the session on the chosen backend, falling back from a WebGPU session that cannot run. */
export async function createCheckedSession(
  i: CheckedSessionInput,
): Promise<{ session: OrtSession; choice: BackendChoice }> {
  const create = (choice: BackendChoice) =>
    OrtSession.create(i.graph, i.external, choice, i.wasmPaths, i.threads);
  if (i.choice.backend !== "webgpu") return { session: await create(i.choice), choice: i.choice };
  const key = `backend-check|${i.memo}`;
  const remembered = await i.storage?.getState<Remembered>(key).catch(() => undefined);
  const wasm = (reason: string): BackendChoice => ({ backend: "wasm", reason });
  if (remembered && !remembered.ok && i.preference === "auto") {
    const choice = wasm(
      `WebGPU failed this model's trial run on an earlier load (${remembered.reason}); WASM instead`,
    );
    return { session: await create(choice), choice };
  }
  const session = await create(i.choice);
  const feeds = remembered?.ok ? undefined : trialFeeds(i.signature);
  if (!feeds) return { session, choice: i.choice };
  try {
    await session.run(feeds);
  } catch (e) {
    await session.release();
    const reason = (e as Error).message.replace(/^run failed: /, "");
    // The same trial on WASM tells a WebGPU fault from inputs this model does not accept.
    const fallback = wasm(`WebGPU loaded the model but failed its trial run (${reason}); WASM instead`);
    const onWasm = await create(fallback);
    if (
      !(await onWasm.run(feeds).then(
        () => true,
        () => false,
      ))
    ) {
      await onWasm.release();
      return { session: await create(i.choice), choice: i.choice };
    }
    await i.storage?.setState(key, { ok: false, reason } satisfies Remembered).catch(() => undefined);
    if (i.preference === "webgpu") {
      await onWasm.release();
      throw new ModelVaultError(
        "ERR_SESSION_FAILED",
        `WebGPU was requested, but the model cannot run on it: ${reason}`,
      );
    }
    return { session: onWasm, choice: fallback };
  }
  await i.storage?.setState(key, { ok: true } satisfies Remembered).catch(() => undefined);
  return { session, choice: i.choice };
}
