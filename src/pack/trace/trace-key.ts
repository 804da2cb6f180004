import { fromBase64Url, toBase64Url } from "../../core/bytes.js";
import { sealContentKey, TRACE_KEY_CTY } from "../../core/content-key-jwe.js";
import { ModelVaultError } from "../../core/errors.js";
import type { EcJwk } from "../../core/jwk.js";
import { TRACE_SECRET_BYTES } from "../../core/tracing/slot-keys.js";

/** The publisher's copy of a package's trace secret (written 0600 by `pack --trace-key-out`). */
export interface TraceKeyFile {
  kty: "oct";
  use: "modelvault-trace";
  k: string;
  model: { id: string; version: number };
  contentKeyId: string;
}

export const TRACE_KEY_USE = "modelvault-trace";

export function traceKeyJson(
  secret: Uint8Array,
  model: { id: string; version: number },
  contentKeyId: string,
): string {
  const file: TraceKeyFile = { kty: "oct", use: TRACE_KEY_USE, k: toBase64Url(secret), model, contentKeyId };
  return `${JSON.stringify(file, null, 2)}\n`;
}

/** trace-key.jwe: the secret sealed to the license server like the content key, bound to the same ids. */
export function sealTraceKey(
  secret: Uint8Array,
  model: { id: string; version: number },
  contentKeyId: string,
  recipient: EcJwk,
): Promise<string> {
  return sealContentKey(
    { modelId: model.id, modelVersion: model.version, contentKeyId, key: secret },
    recipient,
    TRACE_KEY_CTY,
  );
}

/**
 * The secret of a trace key file's contents (parsed JSON) after checking it belongs to `expect`
 * (the package being verified or extracted). ERR_KEY_INVALID otherwise.
 */
export function traceSecretOf(
  value: unknown,
  expect: { model: { id: string; version: number }; contentKeyId: string },
): Uint8Array {
  const v = value as Partial<TraceKeyFile> | null;
  const secret =
    typeof v?.k === "string" && /^[A-Za-z0-9_-]{43}$/.test(v.k) ? fromBase64Url(v.k) : new Uint8Array();
  const ok =
    v?.kty === "oct" &&
    v.use === TRACE_KEY_USE &&
    secret.length === TRACE_SECRET_BYTES &&
    v.model?.id === expect.model.id &&
    v.model?.version === expect.model.version &&
    v.contentKeyId === expect.contentKeyId;
  if (!ok)
    throw new ModelVaultError(
      "ERR_KEY_INVALID",
      `not the trace key of ${expect.model.id} v${expect.model.version} (content key ${expect.contentKeyId})`,
    );
  return secret;
}
