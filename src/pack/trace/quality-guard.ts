import { readFile } from "node:fs/promises";
import { ModelVaultError } from "../../core/errors.js";
import type { TensorInfo } from "../../core/manifest.js";
import { slotSigns } from "../../core/tracing/marks.js";
import { halfToFloat } from "../onnx/read-initializers.js";
import { loadOrt, type Ort } from "./ort-node.js";
import type { TracePlan, TraceSource } from "./plan-trace.js";
import { type FeedSource, givenFeeds, randomFeeds } from "./sample-feeds.js";
import { TRACE_DEFAULTS } from "./trace-options.js";
import { decodeWeights, markSlot, variantBytes } from "./variants.js";

/** What the marks cost on the sample inputs: largest and mean absolute output difference. */
export interface TraceQuality {
  maxDiff: number;
  meanDiff: number;
  /** Sample feeds run, and whether they were drawn from the signature or given. */
  samples: number;
  inputs: "random" | "given";
  /** The codewords the marked models were assembled for. */
  codewords: string[];
  tolerance: number;
}

export type QualityReport = TraceQuality | { skipped: string; tolerance: number };

type Outputs = Float64Array[];

/** The floating-point outputs of one run, flattened in output order; other outputs are not compared. */
function floats(result: Record<string, InstanceType<Ort["Tensor"]>>, names: readonly string[]): Outputs {
  const out: Outputs = [];
  for (const name of names) {
    const t = result[name];
    if (!t || !["float32", "float16", "float64"].includes(t.type)) continue;
    const data = t.data as ArrayLike<number>;
    out.push(
      t.type === "float16" && data instanceof Uint16Array
        ? Float64Array.from(data, halfToFloat)
        : Float64Array.from(data as ArrayLike<number>),
    );
  }
  return out;
}

/** Reference outputs kept for comparison: at most this many values (8 bytes each), at least one sample. */
const REFERENCE_BUDGET = 2 ** 25;

/**
 * Creates a session over the files' current bytes and runs the first `count` feeds through it,
 * handing each sample's float outputs to `use`; stops early (returns the samples run) once
 * `budget` output values have been seen.
 */
async function runSamples(
  ort: Ort,
  files: Map<string, Uint8Array>,
  graph: string,
  feeds: FeedSource,
  count: number,
  use: (index: number, outputs: Outputs) => void,
  budget = Number.POSITIVE_INFINITY,
): Promise<number> {
  const session = await ort.InferenceSession.create(files.get(graph) as Uint8Array, {
    externalData: [...files].filter(([l]) => l !== graph).map(([path, data]) => ({ path, data })),
    logSeverityLevel: 3, // errors only: the guard's output is its report, not the optimizer's notes
  });
  try {
    let seen = 0;
    for (let i = 0; i < count; i++) {
      const outputs = floats(await session.run(feeds.feed(i)), session.outputNames);
      use(i, outputs);
      seen += outputs.reduce((n, o) => n + o.length, 0);
      if (seen >= budget) return i + 1;
    }
    return count;
  } finally {
    await session.release();
  }
}

/** Each slot's original weights and signs, kept between codewords (a quarter of the slot bytes for the signs). */
interface SlotCache {
  weights: Float32Array[];
  signs: Int8Array[];
}

/**
 * Writes the variant `codeword[i]` of every slot over the files' bytes. The first call saves
 * each slot's original weights and signs and checks both variants (markSlot); later calls
 * compute only the variant they need.
 */
async function assemble(
  plan: TracePlan,
  files: Map<string, Uint8Array>,
  cache: SlotCache,
  codeword: Uint8Array,
) {
  for (const [i, slot] of plan.slots.entries()) {
    const file = files.get(slot.file) as Uint8Array;
    const bit = codeword[i] as 0 | 1;
    let weights = cache.weights[i];
    let signs = cache.signs[i];
    let variant: Uint8Array;
    if (weights === undefined || signs === undefined) {
      const bytes = file.subarray(slot.offset, slot.offset + slot.size);
      signs = await slotSigns(plan.secret, i, slot.length);
      weights = decodeWeights(bytes, slot.type);
      cache.signs[i] = signs;
      cache.weights[i] = weights;
      variant = markSlot(bytes, slot.type, signs, slot.delta, { index: i, tensor: slot.tensor })[bit];
    } else variant = variantBytes(weights, slot.type, signs, slot.delta, bit);
    file.set(variant, slot.offset);
  }
}

/**
 * The quality guard (docs/TRACING.md, "Quality guard"): runs the unmarked model and the models
 * assembled for the all-0, the all-1 and two random codewords on the sample inputs with
 * onnxruntime-web (WASM, one thread), and compares every floating-point output. Throws
 * ERR_PACK_TRACE_TOLERANCE when the largest difference exceeds the tolerance. Holds the model
 * files in memory (plus a copy of the slots), so models above TRACE_DEFAULTS.guardMaxBytes are
 * skipped with a reason; so are random inputs of types it cannot draw.
 */
export async function guardQuality(
  plan: TracePlan,
  sources: readonly (TraceSource & { size: number })[],
  inputs: readonly TensorInfo[],
): Promise<QualityReport> {
  const { tolerance } = plan.settings;
  const total = sources.reduce((n, s) => n + s.size, 0);
  if (total > TRACE_DEFAULTS.guardMaxBytes)
    return {
      skipped: `the model files hold ${total} bytes, more than the ${TRACE_DEFAULTS.guardMaxBytes} the guard loads into memory`,
      tolerance,
    };
  const ort = await loadOrt();
  const given = plan.settings.inputs;
  const feeds = given ? givenFeeds(ort, inputs, given) : randomFeeds(ort, inputs, TRACE_DEFAULTS.samples);
  if (typeof feeds === "string") return { skipped: feeds, tolerance };
  const files = new Map<string, Uint8Array>();
  for (const s of sources) files.set(s.location, await readFile(s.path));
  const graph = (sources[0] as TraceSource).location;
  const reference: Outputs[] = [];
  let samples: number;
  try {
    samples = await runSamples(
      ort,
      files,
      graph,
      feeds,
      feeds.count,
      (_, o) => reference.push(o),
      REFERENCE_BUDGET,
    );
  } catch (e) {
    const why = `onnxruntime-web could not run the model on the sample inputs: ${(e as Error).message}`;
    if (given)
      throw new ModelVaultError("ERR_PACK_TRACE_INVALID", `traceInputs: ${why}`, { path: "traceInputs" });
    return { skipped: `${why}; give sample inputs (--trace-inputs)`, tolerance };
  }
  if (reference.every((r) => r.length === 0))
    return { skipped: "the model has no floating-point output", tolerance };
  const cache: SlotCache = { weights: [], signs: [] };
  const n = plan.slots.length;
  const random = () => crypto.getRandomValues(new Uint8Array(n)).map((b) => b & 1);
  const codewords: [string, Uint8Array][] = [
    ["all-0", new Uint8Array(n)],
    ["all-1", new Uint8Array(n).fill(1)],
    ["random", random()],
    ["random", random()],
  ];
  let maxDiff = 0;
  let sum = 0;
  let count = 0;
  const compare = (f: number, marked: Outputs) => {
    for (const [k, a] of (reference[f] as Outputs).entries()) {
      const b = marked[k];
      for (let j = 0; j < a.length; j++) {
        const x = a[j] as number;
        const y = b?.length === a.length ? (b[j] as number) : Number.NaN;
        // NaN where the reference has NaN is no difference; any other NaN, or a missing value, is infinite.
        const diff = Number.isNaN(x) && Number.isNaN(y) ? 0 : Math.abs(x - y);
        maxDiff = Math.max(maxDiff, Number.isNaN(diff) ? Number.POSITIVE_INFINITY : diff);
        sum += Number.isNaN(diff) ? Number.POSITIVE_INFINITY : diff;
        count++;
      }
    }
  };
  for (const [, codeword] of codewords) {
    await assemble(plan, files, cache, codeword);
    await runSamples(ort, files, graph, feeds, samples, compare);
  }
  const quality: TraceQuality = {
    maxDiff,
    meanDiff: count ? sum / count : 0,
    samples,
    inputs: given ? "given" : "random",
    codewords: codewords.map(([name]) => name),
    tolerance,
  };
  if (maxDiff > tolerance)
    throw new ModelVaultError(
      "ERR_PACK_TRACE_TOLERANCE",
      `the marks change the outputs by up to ${maxDiff.toPrecision(3)} (mean ${quality.meanDiff.toPrecision(3)}) on ${quality.samples} ${quality.inputs} samples, more than the tolerance ${tolerance}; use a smaller --trace-strength or a lower --trace-coverage`,
      { maxDiff, meanDiff: quality.meanDiff, tolerance },
    );
  return quality;
}
