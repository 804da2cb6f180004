import { ModelVaultError } from "../src/core/errors.js";
import type { RetryOptions } from "../src/core/worker-protocol.js";

export interface Watchdog {
  /** Pass to fetch: aborted when the download stalls or trickles, or when the caller aborts. */
  signal: AbortSignal;
  /** Call with every chunk's length. */
  received(bytes: number): void;
  /** The error to throw in place of whatever the aborted fetch or read threw. */
  failure(e: unknown): unknown;
  dispose(): void;
}

/**
 * Guards one download attempt against slow retrieval (TUF): fetch has no timeout, and a server
 * that stops sending, or sends a byte a second, would hang the load for ever. The attempt is
 * aborted when no byte arrived for `idleTimeoutMs`, or when, past that time, the average rate is
 * under `minBytesPerSecond`; it then fails with ERR_NETWORK, which the caller's retry retries.
 */
export function watchDownload(what: string, o: RetryOptions, outer?: AbortSignal): Watchdog {
  const idleMs = o.idleTimeoutMs ?? 15_000;
  const minRate = o.minBytesPerSecond ?? 1024;
  const controller = new AbortController();
  const started = performance.now();
  const state = { last: started, bytes: 0, reason: "" };
  const onAbort = () => controller.abort(outer?.reason);
  outer?.addEventListener("abort", onAbort, { once: true });
  const timer = setInterval(
    () => {
      const now = performance.now();
      const seconds = (now - started) / 1000;
      if (now - state.last > idleMs) state.reason = `no data for ${idleMs} ms`;
      else if (now - started > idleMs && state.bytes / seconds < minRate)
        state.reason = `slower than ${minRate} bytes/s`;
      if (state.reason) {
        clearInterval(timer);
        controller.abort(new ModelVaultError("ERR_NETWORK", `${what}: ${state.reason}`));
      }
    },
    Math.max(20, Math.min(1000, idleMs / 4)),
  );
  return {
    signal: controller.signal,
    received(bytes) {
      state.bytes += bytes;
      state.last = performance.now();
    },
    failure(e) {
      if (outer?.aborted) return new ModelVaultError("ERR_ABORTED");
      return state.reason ? new ModelVaultError("ERR_NETWORK", `${what}: ${state.reason}`) : e;
    },
    dispose() {
      clearInterval(timer);
      outer?.removeEventListener("abort", onAbort);
    },
  };
}
