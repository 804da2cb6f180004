import { z } from "zod";
import type { ShardContext } from "../shard-aad.js";
import { IV_BYTES } from "../shard-cipher.js";

/**
 * The `trace` section of a manifest (docs/TRACING.md): where the marked slots sit in the files
 * and the two sealed variants of each. The common shards carry every slot zeroed; the runtime
 * writes the variant its license selects over each slot before the session is created.
 */

export const TRACE_SCHEME = "modelvault-trace/1";
/** More slots than this would not fit their wrapped keys in a license (docs/TRACING.md). */
export const MAX_TRACE_SLOTS = 512;
export const SLOT_ELEMENT_BYTES = { float32: 4, float16: 2 } as const;

const safeInt = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const hex256 = z.string().regex(/^[0-9a-f]{64}$/, "lowercase hex SHA-256");
const ivB64 = z.string().regex(/^[A-Za-z0-9_-]{16}$/, `${IV_BYTES}-byte base64url IV`);

const variant = z.strictObject({ sha256: hex256, iv: ivB64 });

const slot = z.strictObject({
  /** The file (its manifest location) and byte range the slot overwrites. */
  file: z.string().min(1).max(255),
  offset: safeInt,
  size: safeInt.min(1),
  /** The initializer and element offset the slot starts at: how a tracer finds it again. */
  tensor: z.string().min(1).max(256),
  element: safeInt,
  type: z.enum(["float32", "float16"]),
  /** The perturbation per weight: variant b is w + (2b − 1)·delta·s (marks.ts). */
  delta: z.number().positive().finite(),
  variants: z.tuple([variant, variant]),
});

export const traceSchema = z.strictObject({
  scheme: z.literal(TRACE_SCHEME),
  slots: z.array(slot).min(1).max(MAX_TRACE_SLOTS),
});

export type TraceSection = z.infer<typeof traceSchema>;
export type TraceSlot = TraceSection["slots"][number];

/**
 * What a schema cannot say: every slot inside its file, a whole number of elements, slots in
 * file-and-offset order and not overlapping. Returns [path, why] for the first problem.
 */
export function traceProblem(
  trace: TraceSection,
  files: readonly { location: string; size: number }[],
): [string, string] | undefined {
  const order = new Map(files.map((f, i) => [f.location, i]));
  let previous: { file: number; end: number } | undefined;
  for (const [i, s] of trace.slots.entries()) {
    const file = order.get(s.file);
    if (file === undefined) return [`trace.slots.${i}.file`, "names no file of the manifest"];
    if (s.offset + s.size > (files[file]?.size ?? 0)) return [`trace.slots.${i}.size`, "runs past its file"];
    if (s.size % SLOT_ELEMENT_BYTES[s.type] !== 0)
      return [`trace.slots.${i}.size`, "is not a whole number of elements"];
    if (previous && (file < previous.file || (file === previous.file && s.offset < previous.end)))
      return [`trace.slots.${i}.offset`, "slots must be in file and offset order without overlap"];
    previous = { file, end: s.offset + s.size };
  }
  return undefined;
}

/** Element count of a slot. */
export function slotElements(s: TraceSlot): number {
  return s.size / SLOT_ELEMENT_BYTES[s.type];
}

/**
 * The AAD context of variant `bit` of slot `index`: like a shard's, with a location no file can
 * have ("#" is outside the location alphabet), so no variant opens as a shard or as another
 * slot's variant even under the same key.
 */
export function variantContext(
  model: { id: string; version: number },
  trace: TraceSection,
  fileSize: number,
  index: number,
  bit: 0 | 1,
): ShardContext {
  const s = trace.slots[index];
  if (!s) throw new RangeError(`no trace slot ${index}`);
  return {
    modelId: model.id,
    modelVersion: model.version,
    location: `${s.file}#trace-${bit}`,
    fileSize,
    shardIndex: index,
    shardCount: trace.slots.length,
    plaintextSize: s.size,
  };
}

/** Ciphertext path of a variant, beside the shards: `shards/<sha256>.bin`. */
export function variantPath(s: TraceSlot, bit: 0 | 1): string {
  return `shards/${s.variants[bit].sha256}.bin`;
}
