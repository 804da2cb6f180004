import { type FileHandle, open } from "node:fs/promises";
import { ModelVaultError } from "../../core/errors.js";
import { MAX_SHARD_SIZE } from "../../core/manifest.js";
import { TRACE_SECRET_BYTES } from "../../core/tracing/slot-keys.js";
import { SLOT_ELEMENT_BYTES } from "../../core/tracing/trace-manifest.js";
import { fileSource, readFully } from "../file-source.js";
import { ProtobufError } from "../onnx/protobuf-read.js";
import { readInitializers } from "../onnx/read-initializers.js";
import { type EligibleTensor, eligibleTensors, type SlotPlace, selectSlots } from "./select-slots.js";
import { TRACE_DEFAULTS, type TraceSettings } from "./trace-options.js";
import { decodeWeights } from "./variants.js";

/** A file of the package: its path on disk and its manifest location. */
export interface TraceSource {
  path: string;
  location: string;
}

export interface PlannedSlot extends SlotPlace {
  /** Absolute perturbation per weight: strength × the tensor's standard deviation. */
  delta: number;
}

/** Where the marks go and the secret they are keyed with; the secret is zeroed by `dispose()`. */
export interface TracePlan {
  settings: TraceSettings;
  secret: Uint8Array;
  /** Elements per slot, and the eligible float weights they were chosen from. */
  length: number;
  eligible: number;
  slots: PlannedSlot[];
  dispose(): void;
}

const CHUNK_ELEMENTS = 1 << 20;

/**
 * The standard deviation of a tensor's weights read in chunks from its file, so a tensor of
 * gigabytes costs one chunk of memory. The same sums in the same order as marks.ts weightScale.
 */
async function tensorScale(file: FileHandle, t: Omit<EligibleTensor, "scale">): Promise<number> {
  const bytes = SLOT_ELEMENT_BYTES[t.type];
  const buffer = new Uint8Array(Math.min(t.elements, CHUNK_ELEMENTS) * bytes);
  let sum = 0;
  let squares = 0;
  for (let done = 0; done < t.elements; done += CHUNK_ELEMENTS) {
    const chunk = buffer.subarray(0, Math.min(CHUNK_ELEMENTS, t.elements - done) * bytes);
    await readFully(file, chunk, t.offset + done * bytes);
    for (const w of decodeWeights(chunk, t.type)) {
      sum += w;
      squares += w * w;
    }
  }
  const mean = sum / t.elements;
  return Math.sqrt(Math.max(0, squares / t.elements - mean * mean));
}

async function withFile<T>(path: string, use: (file: FileHandle, size: number) => Promise<T>): Promise<T> {
  const file = await open(path, "r");
  try {
    return await use(file, (await file.stat()).size);
  } finally {
    await file.close();
  }
}

/**
 * Chooses the slots of a traceable package (docs/TRACING.md, "Slots"): reads the graph's
 * initializers, keeps the eligible weight tensors with a non-zero spread, places the slots and
 * sizes each slot's δ from its tensor. Reads the weights once; writes nothing.
 */
export async function planTrace(
  settings: TraceSettings,
  sources: readonly TraceSource[],
): Promise<TracePlan> {
  const graph = sources[0] as TraceSource;
  const places = await withFile(graph.path, (file, size) => readInitializers(fileSource(file, size))).catch(
    (e) => {
      if (e instanceof ProtobufError || e instanceof TypeError)
        throw new ModelVaultError("ERR_PACK_NOT_ONNX", `${graph.path} is not an ONNX model: ${e.message}`);
      throw e;
    },
  );
  const candidates = eligibleTensors(
    places,
    graph.location,
    sources.map((s) => s.location),
  );
  const tensors: EligibleTensor[] = [];
  for (const source of sources) {
    const here = candidates.filter((t) => t.file === source.location);
    if (here.length === 0) continue;
    await withFile(source.path, async (file, size) => {
      for (const t of here) {
        if (t.offset + t.elements * SLOT_ELEMENT_BYTES[t.type] > size) continue;
        const scale = await tensorScale(file, t);
        if (scale > 0 && Number.isFinite(scale)) tensors.push({ ...t, scale });
      }
    });
  }
  if (tensors.length === 0)
    throw new ModelVaultError(
      "ERR_PACK_TRACE_INVALID",
      "traceSlots: too few weights: the model has no float32 or float16 weight tensor of rank >= 2 stored as raw bytes",
      { path: "traceSlots" },
    );
  const { length, eligible, slots } = selectSlots(
    tensors,
    settings.slots,
    settings.coverage,
    TRACE_DEFAULTS.minSlotElements,
  );
  const size = slots[0]?.size ?? 0;
  if (size > MAX_SHARD_SIZE)
    throw new ModelVaultError(
      "ERR_PACK_TRACE_INVALID",
      `traceSlots: slots of ${size} bytes exceed the largest shard (${MAX_SHARD_SIZE} bytes); use more slots or a lower coverage`,
      { path: "traceSlots" },
    );
  const scale = new Map(tensors.map((t) => [t.name, t.scale]));
  const secret = crypto.getRandomValues(new Uint8Array(TRACE_SECRET_BYTES));
  return {
    settings,
    secret,
    length,
    eligible,
    slots: slots.map((s) => ({ ...s, delta: settings.strength * (scale.get(s.tensor) as number) })),
    dispose: () => secret.fill(0),
  };
}
