/**
 * The one place comlink is configured. Comlink's default error transfer keeps only name,
 * message and stack; this handler carries ModelVaultError codes and data across the worker
 * boundary in both directions. Both the page and the worker import this module.
 */
import * as Comlink from "comlink";
import { errorFromJSON, ModelVaultError } from "./errors.js";

type Serialized =
  | { isError: true; value: { code: string; message: string; data?: Record<string, unknown> } }
  | { isError: false; value: unknown };

/**
 * Installs the error transfer on comlink (idempotent). Called by each side before it talks
 * over the boundary, rather than as an import side effect, which a bundler trusting a
 * package's `sideEffects` may drop.
 */
export function installErrorTransfer(): void {
  const current = Comlink.transferHandlers.get("throw") as Comlink.TransferHandler<unknown, unknown>;
  if ((current as { modelvault?: true }).modelvault) return;
  // Comlink does not export its throw marker; reuse its own check for "this is a thrown value".
  Comlink.transferHandlers.set("throw", {
    modelvault: true,
    canHandle: (value: unknown): value is { value: unknown } => current.canHandle(value),
    serialize({ value }: { value: unknown }) {
      const e =
        value instanceof ModelVaultError
          ? value.toJSON()
          : { code: "ERR_SESSION_FAILED", message: (value as Error)?.message ?? String(value) };
      return [{ isError: true, value: e } satisfies Serialized, []];
    },
    deserialize(serialized: Serialized) {
      throw serialized.isError ? errorFromJSON(serialized.value) : serialized.value;
    },
  } as never);
}

export { Comlink };
