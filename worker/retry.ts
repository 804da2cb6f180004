import { ModelVaultError } from "../src/core/errors.js";

import type { RetryOptions } from "../src/core/worker-protocol.js";

export type { RetryOptions };

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      reject(new ModelVaultError("ERR_ABORTED"));
    });
  });

/**
 * Runs `task` with exponential backoff and jitter on network failures (TypeError from fetch,
 * 5xx, 429). A ModelVaultError is final and rethrown at once. After the last attempt: ERR_NETWORK.
 */
export async function withRetry<T>(
  task: (attempt: number) => Promise<T>,
  o: RetryOptions,
  signal?: AbortSignal,
): Promise<T> {
  let last: unknown;
  for (let attempt = 0; attempt < o.attempts; attempt++) {
    if (signal?.aborted) throw new ModelVaultError("ERR_ABORTED");
    try {
      return await task(attempt);
    } catch (e) {
      if (e instanceof ModelVaultError && e.code !== "ERR_NETWORK") throw e;
      last = e;
    }
    if (attempt < o.attempts - 1) await sleep(o.baseDelayMs * 2 ** attempt * (0.5 + Math.random()), signal);
  }
  throw new ModelVaultError(
    "ERR_NETWORK",
    `gave up after ${o.attempts} attempts: ${(last as Error)?.message ?? last}`,
  );
}
