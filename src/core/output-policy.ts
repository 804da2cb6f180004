/**
 * Output hardening a publisher signs into the manifest (docs/FORMAT.md, "Output policy"),
 * applied by the worker to every result before it leaves for the page:
 *
 * - `topK`: along the last axis of every output, only the k largest values of each row are
 *   kept (ties: the lower index wins); the others become the lowest value of the element type
 *   (−Infinity for floats), so the ranking of what is kept, and argmax, stay right.
 * - `decimals`: every float value is rounded to that many decimal places (half away from zero).
 *
 * Limiting what each query reveals raises the cost of distilling or extracting the model
 * through its API; it is no defence against someone who has the weights.
 */
import { ModelVaultError } from "./errors.js";
import type { TensorInfo } from "./manifest.js";
import type { PlainTensor } from "./worker-protocol.js";

export interface OutputPolicy {
  topK?: number | undefined;
  decimals?: number | undefined;
}

const FLOATS = new Set(["float32", "float64"]);
const INTEGERS = new Set(["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"]);

const unsupported = (output: string, type: string) =>
  new ModelVaultError(
    "ERR_OUTPUT_POLICY_UNSUPPORTED",
    `outputPolicy cannot be applied to output "${output}" of type ${type}`,
    { output, type },
  );

function isEmpty(policy: OutputPolicy | undefined): policy is undefined {
  return policy === undefined || (policy.topK === undefined && policy.decimals === undefined);
}

/** Checks that a policy can be applied to every declared output (numeric element types only). */
export function checkOutputPolicy(policy: OutputPolicy | undefined, outputs: readonly TensorInfo[]): void {
  if (isEmpty(policy)) return;
  for (const o of outputs)
    if (!FLOATS.has(o.type) && !INTEGERS.has(o.type)) throw unsupported(o.name, o.type);
}

type Numeric =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array;

function lowest(type: string): number | bigint {
  if (FLOATS.has(type)) return Number.NEGATIVE_INFINITY;
  if (type === "int64") return -(2n ** 63n);
  if (type === "uint64") return 0n;
  if (type.startsWith("u")) return 0;
  return -(2 ** (Number(type.slice(3)) - 1));
}

/** Keeps the k largest of each row along the last axis, in place. */
function keepTopK(t: PlainTensor, k: number): void {
  const width = t.dims.at(-1) ?? 1;
  if (t.dims.length === 0 || k >= width) return;
  const data = t.data as unknown as { [i: number]: number | bigint; length: number };
  const floor = lowest(t.type);
  for (let row = 0; row + width <= data.length; row += width) {
    const order = Array.from({ length: width }, (_, i) => i).sort((a, b) => {
      const x = data[row + a] as number;
      const y = data[row + b] as number;
      return x === y || (Number.isNaN(x) && Number.isNaN(y)) ? a - b : x > y || Number.isNaN(y) ? -1 : 1;
    });
    for (const i of order.slice(k)) data[row + i] = floor;
  }
}

function round(values: Float32Array | Float64Array, decimals: number): void {
  const scale = 10 ** decimals;
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (Number.isFinite(v)) values[i] = (Math.sign(v) * Math.round(Math.abs(v) * scale)) / scale;
  }
}

/** Applies the manifest's policy to a run's outputs, in place; refuses what it cannot harden. */
export function applyOutputPolicy(
  policy: OutputPolicy | undefined,
  outputs: Record<string, PlainTensor>,
): Record<string, PlainTensor> {
  if (isEmpty(policy)) return outputs;
  for (const [name, t] of Object.entries(outputs)) {
    if (!FLOATS.has(t.type) && !INTEGERS.has(t.type)) throw unsupported(name, t.type);
    if (policy.topK !== undefined) keepTopK(t, policy.topK);
    if (policy.decimals !== undefined && FLOATS.has(t.type))
      round(t.data as Numeric as Float32Array, policy.decimals);
  }
  return outputs;
}
