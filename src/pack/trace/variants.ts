import { ModelVaultError } from "../../core/errors.js";
import { floatToHalf, halfToFloat } from "../onnx/read-initializers.js";

/** Typed-array views read and write little-endian bytes directly only on little-endian hosts. */
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** float16 bits → float32, one table lookup per weight instead of arithmetic (built once, read only). */
const HALVES: Readonly<Float32Array> = Float32Array.from({ length: 65536 }, (_, h) => halfToFloat(h));

/**
 * A fresh, aligned copy. Not `bytes.slice()`: on a Node Buffer that is a view of the same memory,
 * and its `.buffer` the whole (pooled) allocation.
 */
function copy(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes);
}

/** The weights stored in `bytes` (little-endian float32 or float16) as float32. */
export function decodeWeights(bytes: Uint8Array, type: "float32" | "float16"): Float32Array {
  if (type === "float32") {
    if (LITTLE_ENDIAN) return new Float32Array(copy(bytes).buffer);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return Float32Array.from({ length: bytes.length >> 2 }, (_, i) => view.getFloat32(i * 4, true));
  }
  const table = HALVES;
  const out = new Float32Array(bytes.length >> 1);
  if (LITTLE_ENDIAN) {
    const bits = new Uint16Array(copy(bytes).buffer);
    for (let i = 0; i < out.length; i++) out[i] = table[bits[i] as number] as number;
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < out.length; i++) out[i] = table[view.getUint16(i * 2, true)] as number;
  }
  return out;
}

/** The bytes of `values` stored as `type` (float16: rounded to nearest, ties to even). */
export function encodeWeights(values: Float32Array, type: "float32" | "float16"): Uint8Array {
  if (type === "float32" && LITTLE_ENDIAN) return new Uint8Array(new Float32Array(values).buffer);
  const out = new Uint8Array(values.length * (type === "float32" ? 4 : 2));
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) {
    if (type === "float32") view.setFloat32(i * 4, values[i] as number, true);
    else view.setUint16(i * 2, floatToHalf(values[i] as number), true);
  }
  return out;
}

/**
 * Variant `bit` of a slot's weights: w + (2b − 1)·δ·s, each computed in double and rounded to
 * float32. The same arithmetic as marks.ts markVariant (test/pack/trace-pack.test.ts checks the
 * two agree bit for bit) in a plain loop: markVariant's Float32Array.from with a callback costs
 * ~100 ns a weight, which is minutes on a model of gigabytes.
 */
export function markWeights(
  weights: Float32Array,
  signs: Int8Array,
  delta: number,
  bit: 0 | 1,
): Float32Array {
  const direction = bit === 1 ? delta : -delta;
  const out = new Float32Array(weights.length);
  for (let i = 0; i < weights.length; i++) out[i] = (weights[i] as number) + direction * (signs[i] as number);
  return out;
}

/** Variant `bit` of a slot as stored bytes (float16: computed in float32, then rounded). */
export function variantBytes(
  weights: Float32Array,
  type: "float32" | "float16",
  signs: Int8Array,
  delta: number,
  bit: 0 | 1,
): Uint8Array {
  return encodeWeights(markWeights(weights, signs, delta, bit), type);
}

/**
 * Above this fraction of a slot's weights equal in both variants, rounding has eaten the mark:
 * δ is below the spacing of representable values there (float16 weights, a tiny strength).
 */
const MAX_EQUAL_FRACTION = 0.01;

/**
 * Both variants of one slot as stored bytes (variant b = w + (2b − 1)·δ·s, marks.ts). Refuses
 * (ERR_PACK_TRACE_INVALID, path traceStrength) when the stored variants do not really differ or
 * are not finite.
 */
export function markSlot(
  original: Uint8Array,
  type: "float32" | "float16",
  signs: Int8Array,
  delta: number,
  where: { index: number; tensor: string },
): [Uint8Array, Uint8Array] {
  const weights = decodeWeights(original, type);
  const variants: [Uint8Array, Uint8Array] = [
    variantBytes(weights, type, signs, delta, 0),
    variantBytes(weights, type, signs, delta, 1),
  ];
  const a = decodeWeights(variants[0], type);
  const b = decodeWeights(variants[1], type);
  let equal = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    if (!Number.isFinite(x) || !Number.isFinite(y))
      throw new ModelVaultError(
        "ERR_PACK_TRACE_INVALID",
        `traceStrength: slot ${where.index} in ${where.tensor} would hold a non-finite weight`,
        { path: "traceStrength", slot: where.index },
      );
    if (x === y) equal++;
  }
  if (equal > MAX_EQUAL_FRACTION * a.length)
    throw new ModelVaultError(
      "ERR_PACK_TRACE_INVALID",
      `traceStrength: too weak for ${type}: ${equal} of ${a.length} weights of slot ${where.index} in ${where.tensor} are equal in both variants (δ = ${delta.toPrecision(3)}); use a larger traceStrength`,
      { path: "traceStrength", slot: where.index },
    );
  return variants;
}
