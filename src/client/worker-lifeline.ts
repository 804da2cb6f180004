import { toBase64Url } from "../core/bytes.js";
import { ModelVaultError } from "../core/errors.js";
import type { WorkerApi } from "../core/worker-protocol.js";

/** Rejects with ERR_WORKER_CRASHED once the worker is gone without the page ending it. */
export interface Lifeline {
  lost: Promise<never>;
  /** The page ends the worker itself (dispose, failed load): that is not a crash. */
  release(): void;
}

/**
 * A terminated or crashed worker answers nothing, so calls to it would wait for ever. The
 * worker holds a Web Lock for its whole life; the page queues for the same lock, and the browser
 * grants it only once the worker has ended (killed, out of memory, crashed). Without Web Locks
 * (an insecure context) no crash is detected, and calls keep the old behaviour.
 */
export async function watchWorker(api: Pick<WorkerApi, "holdLifeLock">): Promise<Lifeline> {
  const state = { released: false };
  const locks = (globalThis.navigator as Navigator | undefined)?.locks;
  if (!locks) return { lost: new Promise<never>(() => {}), release: () => {} };
  const name = `modelvault-worker-${toBase64Url(crypto.getRandomValues(new Uint8Array(16)))}`;
  await api.holdLifeLock(name);
  const lost = new Promise<never>((_, reject) => {
    void locks.request(name, () => {
      if (!state.released)
        reject(
          new ModelVaultError(
            "ERR_WORKER_CRASHED",
            "the model's worker ended unexpectedly; load the model again",
          ),
        );
    });
  });
  lost.catch(() => undefined); // observed by every call that races it; never unhandled
  return {
    lost,
    release: () => {
      state.released = true;
    },
  };
}
