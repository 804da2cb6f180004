import { open, readFile } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import { fromBase64Url, fromUtf8 } from "../../core/bytes.js";
import { ModelVaultError } from "../../core/errors.js";
import { type Manifest, parseManifest } from "../../core/manifest.js";
import { importContentKey, openShard } from "../../core/shard-cipher.js";
import { readSlot } from "../../core/tracing/marks.js";
import { slotKeyBytes } from "../../core/tracing/slot-keys.js";
import { type TraceSlot, variantContext, variantPath } from "../../core/tracing/trace-manifest.js";
import { fileSource, readFully } from "../file-source.js";
import { ProtobufError } from "../onnx/protobuf-read.js";
import { decodeFloats, type InitializerPlace, readInitializers } from "../onnx/read-initializers.js";
import { traceSecretOf } from "../trace/trace-key.js";
import { decodeWeights } from "../trace/variants.js";

/** What a leaked model says about each slot (docs/TRACING.md, "Running a trace"). */
export interface LeakReads {
  model: { id: string; version: number };
  /** Per slot: about +1 for variant 1, −1 for variant 0, about 0 for a mix or no mark; 0 where not found. */
  reads: number[];
  /** Per marked tensor: the leaked initializer it was found as, and how well the slot midpoints correlate. */
  matches: { tensor: string; leaked: string | null; correlation: number }[];
}

/** Below this, a leaked tensor is not taken for the marked one (weights of an unrelated model correlate near 0). */
const MIN_CORRELATION = 0.5;

function manifestOf(jws: string): Manifest {
  const payload = jws.trim().split(".")[1];
  if (!payload) throw new ModelVaultError("ERR_MANIFEST_MALFORMED", "manifest.jws is not a compact JWS");
  return parseManifest(JSON.parse(fromUtf8(fromBase64Url(payload))));
}

/** Both variants of a slot as numbers, decrypted from the package with keys derived from the trace secret. */
async function slotVariants(manifest: Manifest, dir: string, secret: Uint8Array, index: number) {
  const trace = manifest.trace as NonNullable<Manifest["trace"]>;
  const slot = trace.slots[index] as TraceSlot;
  const fileSize = manifest.files.find((f) => f.location === slot.file)?.size ?? 0;
  const out: Float32Array[] = [];
  for (const bit of [0, 1] as const) {
    const raw = await slotKeyBytes(secret, manifest.model, index, bit);
    const key = await importContentKey(raw);
    raw.fill(0);
    const variant = slot.variants[bit];
    const ciphertext = await readFile(join(dir, variantPath(slot, bit)));
    const plain = await openShard(
      key,
      fromBase64Url(variant.iv),
      ciphertext,
      variantContext(manifest.model, trace, fileSize, index, bit),
    );
    out.push(decodeWeights(plain, slot.type));
  }
  return out as [Float32Array, Float32Array];
}

/** The float values of every float initializer of a leaked model (graph file plus its external data). */
async function leakedTensors(path: string): Promise<Map<string, Float32Array>> {
  let places: InitializerPlace[];
  const handle = await open(path, "r").catch(() => {
    throw new ModelVaultError("ERR_PACK_INPUT_NOT_FOUND", `cannot read ${path}`, { path });
  });
  try {
    const { size } = await handle.stat();
    places = await readInitializers(fileSource(handle, size));
    const root = resolve(dirname(path));
    const out = new Map<string, Float32Array>();
    for (const place of places) {
      if (!place.data || ![1, 10, 11].includes(place.dataType)) continue;
      const { file, offset, length } = place.data;
      // Sizes come from the leaked file: read only what lies inside it, never allocate more.
      if (file === null) {
        if (offset + length > size) continue;
        const bytes = new Uint8Array(length);
        await readFully(handle, bytes, offset);
        const values = decodeFloats(place, bytes);
        if (values) out.set(place.name, values);
        continue;
      }
      const externalPath = resolve(root, file);
      if (!externalPath.startsWith(root + sep)) continue;
      const external = await open(externalPath, "r").catch(() => undefined);
      if (!external) continue;
      let bytes: Uint8Array;
      try {
        if (offset + length > (await external.stat()).size) continue;
        bytes = new Uint8Array(length);
        await readFully(external, bytes, offset);
      } finally {
        await external.close();
      }
      const values = decodeFloats(place, bytes);
      if (values) out.set(place.name, values);
    }
    return out;
  } catch (e) {
    if (e instanceof ProtobufError || e instanceof TypeError || e instanceof RangeError)
      throw new ModelVaultError("ERR_TRACE_LEAK_UNREADABLE", `${path} is not an ONNX model: ${e.message}`);
    throw e;
  } finally {
    await handle.close();
  }
}

/** Pearson correlation of the leaked values at the slots with the slots' midpoints. */
function correlation(values: Float32Array, slots: { slot: TraceSlot; mid: Float32Array }[]): number {
  let n = 0;
  let sx = 0;
  let sy = 0;
  let sxx = 0;
  let syy = 0;
  let sxy = 0;
  for (const { slot, mid } of slots) {
    if (slot.element + mid.length > values.length) return 0;
    for (let i = 0; i < mid.length; i++) {
      const x = values[slot.element + i] as number;
      const y = mid[i] as number;
      n++;
      sx += x;
      sy += y;
      sxx += x * x;
      syy += y * y;
      sxy += x * y;
    }
  }
  const cov = sxy - (sx * sy) / n;
  const den = Math.sqrt((sxx - (sx * sx) / n) * (syy - (sy * sy) / n));
  return den > 0 && Number.isFinite(cov / den) ? cov / den : 0;
}

/**
 * Reads the marks of a leaked model, non-blind: the package (its signed manifest and both
 * variants of every slot) and the publisher's trace secret give each slot's two variants; the
 * leaked weights are projected on their difference. Marked tensors are found by name, or, when
 * the leak renamed or reordered its initializers, by the correlation of their values with the
 * slot midpoints; element order inside a tensor must be kept (a transposed or refactored layer
 * is not followed).
 */
export async function readLeak(o: {
  leakedPath: string;
  packageDir: string;
  /** The publisher's trace key file, parsed (pack --trace-key-out): it must be this package's. */
  traceKey: unknown;
}): Promise<LeakReads> {
  const manifest = manifestOf(await readFile(join(o.packageDir, "manifest.jws"), "utf8"));
  if (!manifest.trace)
    throw new ModelVaultError("ERR_MODEL_NOT_TRACEABLE", "the package was packed without --trace-slots");
  const slots = manifest.trace.slots;
  const secret = traceSecretOf(o.traceKey, manifest);
  const variants = await Promise.all(
    slots.map((_, i) => slotVariants(manifest, o.packageDir, secret, i)),
  ).finally(() => secret.fill(0));
  const leaked = await leakedTensors(o.leakedPath);
  const byTensor = new Map<string, number[]>();
  for (const [i, s] of slots.entries()) byTensor.set(s.tensor, [...(byTensor.get(s.tensor) ?? []), i]);
  const reads = slots.map(() => 0);
  const matches: LeakReads["matches"] = [];
  const taken = new Set<string>();
  for (const [tensor, indices] of byTensor) {
    const mids = indices.map((i) => {
      const [v0, v1] = variants[i] as [Float32Array, Float32Array];
      return { slot: slots[i] as TraceSlot, mid: v0.map((a, k) => (a + (v1[k] as number)) / 2) };
    });
    // Every candidate is scored, the one carrying the marked name included: a decoy left under
    // that name (its slots noised) must not hide the real tensor renamed elsewhere.
    let best: { name: string | null; r: number } = { name: null, r: 0 };
    for (const [name, values] of leaked) {
      if (taken.has(name)) continue;
      const r = correlation(values, mids);
      if (r > best.r || (r === best.r && name === tensor)) best = { name, r };
    }
    if (best.name === null || best.r < MIN_CORRELATION) {
      matches.push({ tensor, leaked: null, correlation: best.r });
      continue;
    }
    taken.add(best.name);
    matches.push({ tensor, leaked: best.name, correlation: best.r });
    const values = leaked.get(best.name) as Float32Array;
    for (const i of indices) {
      const slot = slots[i] as TraceSlot;
      const [v0, v1] = variants[i] as [Float32Array, Float32Array];
      reads[i] = readSlot(values.subarray(slot.element, slot.element + v0.length), v0, v1);
    }
  }
  if (matches.every((m) => m.leaked === null))
    throw new ModelVaultError(
      "ERR_TRACE_LEAK_UNREADABLE",
      "the leaked model holds none of the marked tensors",
    );
  return { model: manifest.model, reads, matches };
}
