import { concatBytes, toBase64Url } from "../../core/bytes.js";
import { wrapKeysForDevice } from "../../core/cek-wrap.js";
import type { EcJwk } from "../../core/jwk.js";
import type { LicenseClaims } from "../../core/license-token.js";
import { encodeBits, slotKeysBytes, TRACE_WRAP_ALG, traceWrapInfo } from "../../core/tracing/slot-keys.js";
import type { ServerContext } from "../context.js";
import type { ModelTrace } from "./codewords.js";
import { traceKekContext } from "./trace-secret.js";

/**
 * The `trc` claim of a license for a traceable model: the device's codeword and, for every slot
 * i, K(i, x_i) (slot-keys.ts) wrapped to the device's ECDH key under one ephemeral key, bound to
 * this license id. The other variant's key is never derived. Runs after the issuing transaction
 * (like signing, it needs no lock) with the secret openTraceSecret gave before it, so a KEK that
 * cannot decrypt fails the request before anything is committed; the derived keys are zeroed
 * when done.
 */
export async function licenseTraceClaim(
  secret: Uint8Array,
  model: { id: string; version: number },
  trace: ModelTrace,
  codeword: Uint8Array,
  jti: string,
  agreementKey: EcJwk,
): Promise<NonNullable<LicenseClaims["trc"]>> {
  let keys: Uint8Array[] = [];
  try {
    const ids = { id: model.id, version: model.version };
    keys = await slotKeysBytes(secret, ids, codeword);
    const { epk, wrapped } = await wrapKeysForDevice(
      keys,
      agreementKey,
      traceWrapInfo(jti, model.id, model.version),
    );
    return {
      alg: TRACE_WRAP_ALG,
      slots: trace.slots,
      bits: encodeBits(codeword),
      epk,
      keys: toBase64Url(concatBytes(wrapped)),
    };
  } finally {
    for (const k of keys) k.fill(0);
  }
}

/** A traceable model's trace secret, out of the KEK; the caller zeroes it. */
export function openTraceSecret(
  ctx: ServerContext,
  model: { id: string; version: number; content_key_id: string },
  trace: ModelTrace,
): Promise<Uint8Array> {
  return ctx.keys.kek.decrypt(trace.wrappedSecret, traceKekContext(model));
}
