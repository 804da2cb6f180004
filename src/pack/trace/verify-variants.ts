import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fromBase64Url } from "../../core/bytes.js";
import { mapLimit } from "../../core/concurrency.js";
import { openContentKey, TRACE_KEY_CTY } from "../../core/content-key-jwe.js";
import { ModelVaultError } from "../../core/errors.js";
import type { EcJwk } from "../../core/jwk.js";
import type { Manifest } from "../../core/manifest.js";
import { checkShardBytes } from "../../core/shard-check.js";
import { importContentKey, openShard } from "../../core/shard-cipher.js";
import { slotKeyBytes } from "../../core/tracing/slot-keys.js";
import { type TraceSlot, variantContext, variantPath } from "../../core/tracing/trace-manifest.js";
import { traceSecretOf } from "./trace-key.js";

type Traced = Manifest & { trace: NonNullable<Manifest["trace"]> };

/**
 * The trace secret of a traceable package for `verify`: from the publisher's trace key file
 * when given, else from trace-key.jwe opened with the recipient's private key; undefined when
 * neither is at hand (variants are then checked by digest only).
 */
export async function packageTraceSecret(
  dir: string,
  manifest: Traced,
  o: { traceKey?: unknown; recipientKey?: EcJwk },
): Promise<Uint8Array | undefined> {
  if (o.traceKey !== undefined) return traceSecretOf(o.traceKey, manifest);
  if (!o.recipientKey) return undefined;
  const jwe = await readFile(join(dir, "trace-key.jwe"), "utf8").catch(() => {
    throw new ModelVaultError("ERR_TRACE_KEY_INVALID", "trace-key.jwe is missing from a traceable package");
  });
  const expect = {
    modelId: manifest.model.id,
    modelVersion: manifest.model.version,
    contentKeyId: manifest.contentKeyId,
  };
  const envelope = await openContentKey(jwe, o.recipientKey, expect, TRACE_KEY_CTY).catch((cause) => {
    throw new ModelVaultError(
      "ERR_TRACE_KEY_INVALID",
      "trace-key.jwe does not open under this key or belongs to another package",
      {},
      { cause },
    );
  });
  return envelope.key;
}

/** Reads variant `bit` of slot `index` and checks its length and SHA-256 against the manifest. */
async function readVariant(dir: string, slot: TraceSlot, index: number, bit: 0 | 1): Promise<Uint8Array> {
  const location = `${slot.file}#trace-${bit}`;
  const bytes = await readFile(join(dir, variantPath(slot, bit))).catch(() => {
    throw new ModelVaultError(
      "ERR_SHARD_MISSING",
      `variant ${bit} of trace slot ${index} (${variantPath(slot, bit)}) is missing`,
      { location, index },
    );
  });
  await checkShardBytes({ index, size: slot.size, ...slot.variants[bit] }, bytes, location);
  return bytes;
}

/** Variant `bit` of slot `index`, checked and decrypted under its own key and AAD. */
export async function openVariant(
  dir: string,
  manifest: Traced,
  secret: Uint8Array,
  index: number,
  bit: 0 | 1,
): Promise<Uint8Array> {
  const slot = manifest.trace.slots[index] as TraceSlot;
  const ciphertext = await readVariant(dir, slot, index, bit);
  const raw = await slotKeyBytes(secret, manifest.model, index, bit);
  const key = await importContentKey(raw);
  raw.fill(0);
  const fileSize = manifest.files.find((f) => f.location === slot.file)?.size ?? 0;
  return openShard(
    key,
    fromBase64Url(slot.variants[bit].iv),
    ciphertext,
    variantContext(manifest.model, manifest.trace, fileSize, index, bit),
  );
}

/**
 * Checks both variants of every slot: present, of the right length and digest, and with the
 * secret, decrypting under their own keys. Returns how many variants were checked.
 */
export async function verifyVariants(
  dir: string,
  manifest: Traced,
  secret: Uint8Array | undefined,
  concurrency: number,
): Promise<number> {
  const jobs = manifest.trace.slots.flatMap((slot, index) =>
    [0, 1].map((bit) => ({ slot, index, bit: bit as 0 | 1 })),
  );
  await mapLimit(jobs, concurrency, async ({ slot, index, bit }) => {
    if (secret) await openVariant(dir, manifest, secret, index, bit);
    else await readVariant(dir, slot, index, bit);
  });
  return jobs.length;
}
