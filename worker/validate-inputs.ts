import { ModelVaultError } from "../src/core/errors.js";
import type { TensorInfo } from "../src/core/manifest.js";
import type { PlainTensor } from "../src/core/worker-protocol.js";

/** The typed array that holds each element type's data (float16 as raw 16-bit words). */
export const TYPED_ARRAYS: Record<string, { new (length: number): ArrayBufferView; name: string }> = {
  float32: Float32Array,
  float64: Float64Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
  bool: Uint8Array,
  float16: Uint16Array,
};

const bad = (input: string, why: string) =>
  new ModelVaultError("ERR_INPUT_INVALID", `input "${input}": ${why}`, { input });

/**
 * Checks run() inputs against the manifest's signature before they reach onnxruntime: the exact
 * set of names, element type, rank, fixed dims, symbolic dims consistent across inputs, data
 * length, and no NaN or Infinity in float inputs.
 */
export function validateInputs(feeds: Record<string, PlainTensor>, signature: TensorInfo[]): void {
  const expected = new Map(signature.map((s) => [s.name, s]));
  for (const name of Object.keys(feeds))
    if (!expected.has(name)) throw bad(name, "not an input of this model");
  const symbols = new Map<string, number>();
  for (const info of signature) {
    const t = feeds[info.name];
    if (!t) throw bad(info.name, "missing");
    if (info.type !== "unknown" && t.type !== info.type)
      throw bad(info.name, `element type ${t.type}, expected ${info.type}`);
    const arrayType = TYPED_ARRAYS[t.type]?.name;
    if (arrayType && t.data.constructor.name !== arrayType)
      throw bad(info.name, `data is a ${t.data.constructor.name}, expected ${arrayType}`);
    if (!Array.isArray(t.dims) || t.dims.some((d) => !Number.isSafeInteger(d) || d < 0))
      throw bad(info.name, "dims must be non-negative integers");
    if (t.dims.length !== info.shape.length)
      throw bad(info.name, `rank ${t.dims.length}, expected ${info.shape.length}`);
    info.shape.forEach((dim, i) => {
      const got = t.dims[i] as number;
      if (typeof dim === "number" && dim !== got) throw bad(info.name, `dim ${i} is ${got}, expected ${dim}`);
      if (typeof dim === "string") {
        const seen = symbols.get(dim);
        if (seen !== undefined && seen !== got)
          throw bad(info.name, `dim ${i} ("${dim}") is ${got}, but ${seen} elsewhere`);
        symbols.set(dim, got);
      }
    });
    const count = t.dims.reduce((a, b) => a * b, 1);
    const length = (t.data as unknown as { length: number }).length;
    if (length !== count) throw bad(info.name, `has ${length} values, dims say ${count}`);
    if (t.type === "float32" || t.type === "float64") {
      const values = t.data as Float32Array;
      for (let i = 0; i < values.length; i++) {
        if (!Number.isFinite(values[i])) throw bad(info.name, `value ${i} is not finite`);
      }
    }
  }
}
