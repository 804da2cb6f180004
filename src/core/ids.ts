import { ModelVaultError } from "./errors.js";

// Ids end up in file names, URLs, AAD and logs: a small safe alphabet keeps every one of those
// uninteresting (no path separators, no control or bidi characters, no Unicode look-alikes).
const MODEL_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Throws ERR_INVALID_ID unless `id` is a safe model id; returns it unchanged. */
export function checkModelId(id: unknown): string {
  if (typeof id !== "string" || !MODEL_ID.test(id) || id.includes("..")) {
    throw new ModelVaultError(
      "ERR_INVALID_ID",
      "model id must match [A-Za-z0-9][A-Za-z0-9._-]{0,127} without '..'",
    );
  }
  return id;
}

export const MAX_VERSION = 0x7fff_ffff;

/** Throws ERR_INVALID_VERSION unless `version` is an integer in [1, 2^31-1] (a decimal string is accepted). */
export function checkModelVersion(version: unknown): number {
  const n = typeof version === "string" && /^[1-9][0-9]{0,9}$/.test(version) ? Number(version) : version;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > MAX_VERSION) {
    throw new ModelVaultError("ERR_INVALID_VERSION", "model version must be an integer in [1, 2147483647]");
  }
  return n;
}
