import { ModelVaultError } from "../../core/errors.js";
import type { TensorInfo } from "../../core/manifest.js";
import { floatToHalf } from "../onnx/read-initializers.js";
import type { Ort } from "./ort-node.js";
import type { TraceFeed } from "./trace-options.js";

type Tensor = InstanceType<Ort["Tensor"]>;
export type OrtFeed = Record<string, Tensor>;

/** The guard's sample feeds, made on demand so only one random feed exists at a time. */
export interface FeedSource {
  count: number;
  feed(index: number): OrtFeed;
}

/** Input element types the guard can feed, and how numbers become their typed array. */
const FEEDABLE = {
  float32: (n: ArrayLike<number>) => Float32Array.from(n),
  float64: (n: ArrayLike<number>) => Float64Array.from(n),
  float16: (n: ArrayLike<number>) => Uint16Array.from(n, floatToHalf),
  int8: (n: ArrayLike<number>) => Int8Array.from(n),
  uint8: (n: ArrayLike<number>) => Uint8Array.from(n),
  int16: (n: ArrayLike<number>) => Int16Array.from(n),
  uint16: (n: ArrayLike<number>) => Uint16Array.from(n),
  int32: (n: ArrayLike<number>) => Int32Array.from(n),
  uint32: (n: ArrayLike<number>) => Uint32Array.from(n),
  int64: (n: ArrayLike<number>) => BigInt64Array.from(Array.from(n), (v) => BigInt(Math.trunc(v))),
  uint64: (n: ArrayLike<number>) => BigUint64Array.from(Array.from(n), (v) => BigInt(Math.trunc(v))),
  bool: (n: ArrayLike<number>) => Uint8Array.from(n, (v) => (v ? 1 : 0)),
} as const;
type Feedable = keyof typeof FEEDABLE;

function feedable(type: TensorInfo["type"]): type is Feedable {
  return type in FEEDABLE;
}

/** Mulberry32: the random sample inputs are the same on every pack of the same model. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random values of one input: floats uniform in [0, 1), everything else 0 or 1. */
function randomValues(type: Feedable, n: number, random: () => number): ArrayLike<number> {
  const out = type.startsWith("float") ? new Float64Array(n) : new Uint8Array(n);
  if (type.startsWith("float")) for (let i = 0; i < n; i++) out[i] = random();
  else for (let i = 0; i < n; i++) out[i] = random() < 0.5 ? 0 : 1;
  return out;
}

/**
 * Random feeds drawn from the signature (docs/TRACING.md, "Quality guard"): every symbolic
 * dimension is 1; floating-point inputs uniform in [0, 1) (the range of normalised pixels and
 * probabilities), integer inputs 0 or 1 with equal probability (valid as indices and token ids
 * for any vocabulary), booleans fair coins. Feed i is drawn from a generator seeded with i, so
 * every model of the guard sees the same inputs without keeping them. Returns a reason instead
 * when an input has a type the guard cannot draw (strings, sequences).
 */
export function randomFeeds(ort: Ort, inputs: readonly TensorInfo[], count: number): FeedSource | string {
  const odd = inputs.find((i) => !feedable(i.type));
  if (odd) return `input "${odd.name}" has type ${odd.type}; give sample inputs (--trace-inputs)`;
  return {
    count,
    feed(index) {
      const random = seeded(0x7ace + index);
      const feed: OrtFeed = {};
      for (const input of inputs) {
        const type = input.type as Feedable;
        const dims = input.shape.map((d) => (typeof d === "number" ? d : 1));
        const values = randomValues(
          type,
          dims.reduce((a, d) => a * d, 1),
          random,
        );
        feed[input.name] = new ort.Tensor(type, FEEDABLE[type](values), dims);
      }
      return feed;
    },
  };
}

/**
 * The user's sample feeds as tensors: every input of the signature, no other name, values
 * finite, dims of the input's rank and equal to its fixed dimensions. ERR_PACK_TRACE_INVALID
 * (path traceInputs…) otherwise.
 */
export function givenFeeds(ort: Ort, inputs: readonly TensorInfo[], feeds: readonly TraceFeed[]): FeedSource {
  const fail = (path: string, why: string) =>
    new ModelVaultError("ERR_PACK_TRACE_INVALID", `${path}: ${why}`, { path });
  const tensors = feeds.map((feed, i) => {
    const extra = Object.keys(feed).find((name) => !inputs.some((input) => input.name === name));
    if (extra !== undefined) throw fail(`traceInputs.${i}.${extra}`, "is not an input of the model");
    const out: OrtFeed = {};
    for (const input of inputs) {
      const path = `traceInputs.${i}.${input.name}`;
      const given = feed[input.name];
      if (!given) throw fail(path, "is missing");
      if (!feedable(input.type)) throw fail(path, `has type ${input.type}, which the guard cannot feed`);
      const fits =
        given.dims.length === input.shape.length &&
        input.shape.every((d, k) => typeof d !== "number" || d === given.dims[k]);
      if (!fits) throw fail(`${path}.dims`, `do not fit the input's shape ${JSON.stringify(input.shape)}`);
      const values = Array.from(given.data, Number);
      if (!values.every(Number.isFinite)) throw fail(`${path}.data`, "must be finite numbers");
      out[input.name] = new ort.Tensor(input.type, FEEDABLE[input.type](values), [...given.dims]);
    }
    return out;
  });
  return { count: tensors.length, feed: (index) => tensors[index] as OrtFeed };
}
