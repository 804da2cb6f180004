import { unwrapKeysOnDevice } from "../src/core/cek-wrap.js";
import { ModelVaultError } from "../src/core/errors.js";
import type { LicenseClaims } from "../src/core/license-token.js";
import type { Manifest } from "../src/core/manifest.js";
import { decodeBits, splitWrappedKeys, traceWrapInfo } from "../src/core/tracing/slot-keys.js";

/** A traceable model's slot keys from the license: the codeword's bit and the key of that variant, per slot. */
export interface SlotKeys {
  bits: Uint8Array;
  keys: CryptoKey[];
}

/**
 * A traceable model's slot keys, unwrapped inside Web Crypto like the content key: one
 * non-extractable AES-GCM key per slot, for the variant the device's codeword selects. A
 * license without them (or with keys that do not unwrap) cannot load a traceable model.
 */
export async function unwrapSlotKeys(
  agreePrivate: CryptoKey,
  claims: LicenseClaims,
  manifest: Manifest,
): Promise<SlotKeys | undefined> {
  if (!manifest.trace) return undefined;
  const slots = manifest.trace.slots.length;
  const trc = claims.trc;
  if (!trc || trc.slots !== slots)
    throw new ModelVaultError(
      "ERR_LICENSE_INVALID",
      "the license carries no slot keys for this traceable model",
    );
  try {
    const bits = decodeBits(trc.bits, slots);
    const keys = await unwrapKeysOnDevice(
      agreePrivate,
      trc.epk,
      splitWrappedKeys(trc.keys, slots),
      traceWrapInfo(claims.jti, manifest.model.id, manifest.model.version),
    );
    return { bits, keys };
  } catch (cause) {
    throw new ModelVaultError(
      "ERR_LICENSE_INVALID",
      "the slot keys do not unwrap with this device's key",
      {},
      { cause },
    );
  }
}
