import { ModelVaultError } from "../../core/errors.js";
import { SLOT_ELEMENT_BYTES } from "../../core/tracing/trace-manifest.js";
import { elementCount, type InitializerPlace } from "../onnx/read-initializers.js";

/** ONNX TensorProto.DataType numbers of the element types slots may mark. */
const MARKABLE: Record<number, "float32" | "float16"> = { 1: "float32", 10: "float16" };

/** A weight tensor slots may be placed in: where its raw values sit, and their spread. */
export interface EligibleTensor {
  name: string;
  type: "float32" | "float16";
  /** Manifest location of the file holding the values, and their byte offset in it. */
  file: string;
  offset: number;
  elements: number;
  /** The weights' standard deviation (marks.ts weightScale), filled in by the planner. */
  scale: number;
}

/** One slot: a contiguous run of `length` elements of one tensor, one byte range of one file. */
export interface SlotPlace {
  file: string;
  offset: number;
  size: number;
  tensor: string;
  element: number;
  type: "float32" | "float16";
  length: number;
}

/**
 * The initializers slots may mark: float32 or float16 weights of rank >= 2 stored as raw bytes
 * (inline raw_data or external data) in a file of the package. Vectors (biases, norms), scalars,
 * integer tensors (shapes, indices) and float_data encodings never are. Tensors whose bytes
 * overlap another's (shared external data) are dropped: one byte must not carry two marks.
 */
export function eligibleTensors(
  places: readonly InitializerPlace[],
  graphFile: string,
  files: readonly string[],
) {
  const out: Omit<EligibleTensor, "scale">[] = [];
  for (const p of places) {
    const type = MARKABLE[p.dataType];
    if (!type || !p.data || p.data.encoding !== "raw" || p.dims.length < 2) continue;
    const elements = elementCount(p);
    if (
      !Number.isSafeInteger(elements) ||
      elements < 1 ||
      p.data.length !== elements * SLOT_ELEMENT_BYTES[type]
    )
      continue;
    const file = p.data.file ?? graphFile;
    if (!files.includes(file)) continue;
    out.push({ name: p.name, type, file, offset: p.data.offset, elements });
  }
  const order = (t: { file: string; offset: number }) => files.indexOf(t.file);
  out.sort((a, b) => order(a) - order(b) || a.offset - b.offset);
  const names = new Set<string>();
  let end = { file: "", offset: 0 };
  return out.filter((t) => {
    const overlaps = end.file === t.file && end.offset > t.offset;
    const duplicate = names.has(t.name);
    names.add(t.name);
    if (overlaps || duplicate) return false;
    end = { file: t.file, offset: t.offset + t.elements * SLOT_ELEMENT_BYTES[t.type] };
    return true;
  });
}

/**
 * How many slots each tensor gets: in proportion to its size (largest remainders), never more
 * than fit at `length` elements each.
 */
function apportion(tensors: readonly EligibleTensor[], n: number, length: number): number[] {
  const total = tensors.reduce((s, t) => s + t.elements, 0);
  const cap = tensors.map((t) => Math.floor(t.elements / length));
  const quota = tensors.map((t) => (n * t.elements) / total);
  const counts = quota.map((q, i) => Math.min(Math.floor(q), cap[i] as number));
  let left = n - counts.reduce((s, c) => s + c, 0);
  const byRemainder = tensors
    .map((_, i) => i)
    .sort(
      (a, b) => (quota[b] as number) - (counts[b] as number) - ((quota[a] as number) - (counts[a] as number)),
    );
  while (left > 0) {
    const i = byRemainder.find((k) => (counts[k] as number) < (cap[k] as number));
    if (i === undefined) break;
    counts[i] = (counts[i] as number) + 1;
    left--;
    byRemainder.push(...byRemainder.splice(byRemainder.indexOf(i), 1)); // next tensor first
  }
  if (left > 0)
    throw new ModelVaultError(
      "ERR_PACK_TRACE_INVALID",
      `traceSlots: too few weights: ${n} slots of ${length} weights do not fit in the eligible tensors`,
      { path: "traceSlots" },
    );
  return counts;
}

/**
 * Places `n` slots of equal length L = floor(coverage × eligible weights / n) over the tensors,
 * in proportion to their size and evenly spaced inside each: slot j of k in a tensor of S
 * elements starts at floor(((2j + 1)·S − k·L) / 2k), the run centred in the j-th k-th of the
 * tensor (consecutive starts are at least floor(S/k) >= L apart, so runs never overlap). The
 * result is in file and offset order, as the manifest lists slots.
 */
export function selectSlots(
  tensors: readonly EligibleTensor[],
  n: number,
  coverage: number,
  minLength: number,
): { length: number; eligible: number; slots: SlotPlace[] } {
  const eligible = tensors.reduce((s, t) => s + t.elements, 0);
  const length = Math.floor((coverage * eligible) / n);
  if (length < minLength)
    throw new ModelVaultError(
      "ERR_PACK_TRACE_INVALID",
      `traceSlots: too few weights: ${eligible} eligible float weights at coverage ${coverage} give slots of ${length} weights (at least ${minLength} needed); use fewer slots or a higher coverage`,
      { path: "traceSlots", eligible, length },
    );
  const counts = apportion(tensors, n, length);
  const slots: SlotPlace[] = [];
  for (const [i, t] of tensors.entries()) {
    const k = counts[i] as number;
    const bytes = SLOT_ELEMENT_BYTES[t.type];
    for (let j = 0; j < k; j++) {
      const element = Math.floor(((2 * j + 1) * t.elements - k * length) / (2 * k));
      slots.push({
        file: t.file,
        offset: t.offset + element * bytes,
        size: length * bytes,
        tensor: t.name,
        element,
        type: t.type,
        length,
      });
    }
  }
  return { length, eligible, slots };
}
