/**
 * Output monitoring a publisher signs into the manifest (docs/FORMAT.md, "Monitoring policy").
 * Inputs and outputs never leave the device: the runtime only counts, per monitored output,
 *
 * - `classes`: which class won (the arg-max along the last axis of each row), or
 * - `buckets`: which bucket a per-row summary statistic (mean or max over the last axis) fell in,
 *   bucket i holding `edges[i-1] <= value < edges[i]`,
 *
 * and a usage report carries these counts (per report, never per inference) once at least
 * `minCount` rows were counted. The server compares the distributions with the model's baseline.
 */
import { z } from "zod";
import type { TensorInfo } from "./manifest.js";
import type { PlainTensor } from "./worker-protocol.js";

export const MAX_MONITORED_OUTPUTS = 4;
/** Bins over all monitored outputs: a report's counts must fit its 4 KiB limit. */
export const MAX_TOTAL_BINS = 64;
export const DEFAULT_MIN_COUNT = 20;

const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

const classesSpec = z.strictObject({
  output: z.string().min(1).max(256),
  kind: z.literal("classes"),
  classes: z.number().int().min(2).max(MAX_TOTAL_BINS),
  /** Expected counts per class (from a sample set at pack time); absent: the server learns one. */
  baseline: z.array(count).max(MAX_TOTAL_BINS).optional(),
});

const bucketsSpec = z.strictObject({
  output: z.string().min(1).max(256),
  kind: z.literal("buckets"),
  statistic: z.enum(["mean", "max"]),
  /** Strictly increasing bucket boundaries: edges.length + 1 buckets. */
  edges: z
    .array(z.number().refine(Number.isFinite, "finite"))
    .min(1)
    .max(MAX_TOTAL_BINS - 1),
  baseline: z.array(count).max(MAX_TOTAL_BINS).optional(),
});

export const monitoringSchema = z.strictObject({
  outputs: z
    .array(z.discriminatedUnion("kind", [classesSpec, bucketsSpec]))
    .min(1)
    .max(MAX_MONITORED_OUTPUTS),
  /** Rows an output must have counted before its counts go into a report (privacy floor). */
  minCount: z.number().int().min(1).max(1_000_000),
});

export type MonitoringPolicy = z.infer<typeof monitoringSchema>;
export type MonitoredOutput = MonitoringPolicy["outputs"][number];

/** Counts per monitored output, aligned with `policy.outputs`; `[]` for an output not reported. */
export type OutputAggregates = number[][];

/** Number of bins of one monitored output. */
export function binsOf(spec: MonitoredOutput): number {
  return spec.kind === "classes" ? spec.classes : spec.edges.length + 1;
}

const NUMERIC = new Set([
  "float32",
  "float64",
  "float16",
  "int8",
  "uint8",
  "int16",
  "uint16",
  "int32",
  "uint32",
  "int64",
  "uint64",
]);

/**
 * What a schema cannot say: edges increasing, baselines of the right length, unique outputs
 * that exist in the signature with a numeric type, a class count matching a fixed last axis,
 * and at most MAX_TOTAL_BINS bins in all. Returns the first problem as [path, message].
 */
export function monitoringProblem(
  policy: MonitoringPolicy,
  outputs: readonly TensorInfo[],
): [string, string] | undefined {
  let total = 0;
  const seen = new Set<string>();
  for (const [i, spec] of policy.outputs.entries()) {
    const at = `outputs.${i}`;
    if (seen.has(spec.output)) return [`${at}.output`, "monitored twice"];
    seen.add(spec.output);
    const info = outputs.find((o) => o.name === spec.output);
    if (!info) return [`${at}.output`, `no output named "${spec.output}"`];
    if (!NUMERIC.has(info.type)) return [`${at}.output`, `output of type ${info.type} cannot be monitored`];
    if (spec.kind === "buckets" && spec.edges.some((e, j) => j > 0 && e <= (spec.edges[j - 1] as number)))
      return [`${at}.edges`, "must be strictly increasing"];
    const last = info.shape.at(-1);
    if (spec.kind === "classes" && typeof last === "number" && last !== spec.classes)
      return [`${at}.classes`, `the output's last axis has ${last} values`];
    const bins = binsOf(spec);
    if (spec.baseline && spec.baseline.length !== bins) return [`${at}.baseline`, `needs ${bins} counts`];
    total += bins;
  }
  if (total > MAX_TOTAL_BINS) return ["outputs", `at most ${MAX_TOTAL_BINS} bins in all`];
  return undefined;
}

function values(t: PlainTensor): ArrayLike<number | bigint> {
  return t.data as unknown as ArrayLike<number | bigint>;
}

/** Adds one output's rows to `into` (length binsOf(spec)); returns how many rows were counted. */
export function countOutput(spec: MonitoredOutput, t: PlainTensor, into: number[]): number {
  const data = values(t);
  const width = t.dims.length === 0 ? 1 : (t.dims.at(-1) ?? 1);
  if (width < 1) return 0;
  if (spec.kind === "classes" && width !== spec.classes) return 0;
  let rows = 0;
  for (let row = 0; row + width <= data.length; row += width) {
    let bin = -1;
    if (spec.kind === "classes") {
      let best = Number.NEGATIVE_INFINITY;
      for (let i = 0; i < width; i++) {
        const v = Number(data[row + i]);
        if (v > best) {
          best = v;
          bin = i;
        }
      }
    } else {
      let acc = spec.statistic === "max" ? Number.NEGATIVE_INFINITY : 0;
      for (let i = 0; i < width; i++) {
        const v = Number(data[row + i]);
        acc = spec.statistic === "max" ? Math.max(acc, v) : acc + v;
      }
      const stat = spec.statistic === "mean" ? acc / width : acc;
      if (Number.isNaN(stat)) continue;
      bin = spec.edges.filter((e) => e <= stat).length;
    }
    if (bin < 0) continue;
    into[bin] = (into[bin] ?? 0) + 1;
    rows++;
  }
  return rows;
}

/** Counts every monitored output of one run into `into` (aligned with policy.outputs). */
export function countOutputs(
  policy: MonitoringPolicy,
  outputs: Record<string, PlainTensor>,
  into: OutputAggregates,
): void {
  for (const [i, spec] of policy.outputs.entries()) {
    const t = outputs[spec.output];
    if (!t) continue;
    into[i] ??= new Array(binsOf(spec)).fill(0);
    countOutput(spec, t, into[i] as number[]);
  }
}

/**
 * A baseline from a sample set: the counts the runtime would report for these outputs (each
 * element one run's outputs). Publishers put the result in each monitored output's `baseline`.
 */
export function baselineFromSamples(
  policy: MonitoringPolicy,
  runs: readonly Record<string, PlainTensor>[],
): OutputAggregates {
  const into: OutputAggregates = policy.outputs.map((s) => new Array(binsOf(s)).fill(0));
  for (const outputs of runs) countOutputs(policy, outputs, into);
  return into;
}

export const sum = (counts: readonly number[]): number => counts.reduce((n, c) => n + c, 0);
