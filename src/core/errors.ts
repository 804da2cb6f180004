import { ERROR_CODES, type ErrorCode } from "./error-codes.js";

export { ERROR_CODES, type ErrorCode };

/**
 * The one error type ModelVault throws on purpose. `code` is stable (see error-codes.ts);
 * `message` is for people and may change; `data` carries safe, non-secret details
 * (a field path, a shard index), never key material or tokens.
 *
 * @example
 * try { await verifyManifest(jws, { publisherKeys }) }
 * catch (e) { if (isModelVaultError(e, "ERR_MANIFEST_ROLLBACK")) showUpdatePrompt() }
 */
export class ModelVaultError extends Error {
  override readonly name = "ModelVaultError";
  readonly code: ErrorCode;
  readonly status: number;
  readonly data: Readonly<Record<string, unknown>>;

  constructor(
    code: ErrorCode,
    message?: string,
    data: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message ?? ERROR_CODES[code].text, options);
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.data = data;
  }

  /** A plain object that survives structured clone, JSON and the worker boundary. */
  toJSON(): { code: ErrorCode; message: string; data: Readonly<Record<string, unknown>> } {
    return { code: this.code, message: this.message, data: this.data };
  }
}

/** True when `e` is a ModelVaultError, optionally with the given code. */
export function isModelVaultError(e: unknown, code?: ErrorCode): e is ModelVaultError {
  return e instanceof ModelVaultError && (code === undefined || e.code === code);
}

/** Rebuilds an error from its toJSON() form (worker boundary, HTTP bodies). Unknown codes are kept as text. */
export function errorFromJSON(value: {
  code: string;
  message: string;
  data?: Record<string, unknown>;
}): Error {
  if (value.code in ERROR_CODES)
    return new ModelVaultError(value.code as ErrorCode, value.message, value.data ?? {});
  return new Error(`${value.code}: ${value.message}`);
}
