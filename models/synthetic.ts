/**
 * Synthetic ONNX models of a chosen size, for tests and benchmarks; generated on demand.
 *
 * - "matmul": y[1,256] = MatMul(x[1,rows], W[rows,256]) with float32 W of about `bytes` bytes.
 *   Runs in onnxruntime; used by benchmarks.
 * - "bytes": W is a uint8 tensor of exactly `bytes` bytes; y = ReduceSum(Cast(W)) + x. Lets
 *   round-trip tests hit exact sizes (1 byte, one shard, one shard + 1).
 *
 * With `external`, W lives in "<model>.data" (or, with `externalFiles: n`, in n files
 * "<model>.0.data" … concatenated by the graph) and the graph file stays tiny, as large models do.
 */
import { open } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { ONNX_FLOAT } from "../src/pack/onnx/element-types.js";
import { encodeModel, type OnnxGraph, type OnnxInitializer } from "../src/pack/onnx/write-model.js";

export interface SyntheticOptions {
  bytes: number;
  kind?: "matmul" | "bytes";
  external?: boolean;
  /** With `external`, split the weights over this many files (default 1), as large models do. */
  externalFiles?: number;
  /** Seed for the weight pattern, so two generations are byte-identical. */
  seed?: number;
}

const COLS = 256;
const ONNX_UINT8 = 2;
const BLOCK = 1 << 20;

/** A deterministic block of small float32 values (or bytes), repeated to fill the weights. */
function weightBlock(seed: number): Uint8Array {
  const floats = new Float32Array(BLOCK / 4);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < floats.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    floats[i] = ((s >>> 0) / 0xffffffff - 0.5) * 0.01;
  }
  return new Uint8Array(floats.buffer);
}

/** Rows of W in each external file: as even a split as whole rows allow. */
function splitRows(rows: number, parts: number): number[] {
  const n = Math.max(1, Math.min(parts, rows));
  return Array.from({ length: n }, (_, i) => Math.floor((rows * (i + 1)) / n) - Math.floor((rows * i) / n));
}

/** The graph; with several external files W is Concat(W.0, W.1, …) along its first axis. */
function graphFor(
  opts: Required<SyntheticOptions>,
  base: string,
): { graph: OnnxGraph; parts: { location: string; bytes: number }[] } {
  const matmul = opts.kind === "matmul";
  const rows = matmul ? Math.max(1, Math.floor(opts.bytes / (4 * COLS))) : opts.bytes;
  const rowBytes = matmul ? 4 * COLS : 1;
  const counts = opts.external ? splitRows(rows, opts.externalFiles) : [rows];
  const single = counts.length === 1;
  const parts = counts.map((n, i) => ({
    location: single ? `${base}.data` : `${base}.${i}.data`,
    bytes: n * rowBytes,
  }));
  const initializers: OnnxInitializer[] = counts.map((n, i) => ({
    name: single ? "W" : `W.${i}`,
    dataType: matmul ? ONNX_FLOAT : ONNX_UINT8,
    dims: matmul ? [n, COLS] : [n],
    ...(opts.external
      ? {
          external: {
            location: (parts[i] as { location: string }).location,
            offset: 0,
            length: n * rowBytes,
          },
        }
      : {}),
  }));
  const concat: OnnxGraph["nodes"] = single
    ? []
    : [{ op: "Concat", inputs: initializers.map((t) => t.name), outputs: ["W"], attributes: { axis: 0 } }];
  const graph: OnnxGraph = matmul
    ? {
        name: "synthetic-matmul",
        nodes: [...concat, { op: "MatMul", inputs: ["x", "W"], outputs: ["y"] }],
        initializers,
        inputs: [{ name: "x", dataType: ONNX_FLOAT, shape: [1, rows] }],
        outputs: [{ name: "y", dataType: ONNX_FLOAT, shape: [1, COLS] }],
      }
    : {
        name: "synthetic-bytes",
        nodes: [
          ...concat,
          { op: "Cast", inputs: ["W"], outputs: ["Wf"], attributes: { to: ONNX_FLOAT } },
          { op: "ReduceSum", inputs: ["Wf"], outputs: ["s"], attributes: { keepdims: 0 } },
          { op: "Add", inputs: ["s", "x"], outputs: ["y"] },
        ],
        initializers,
        inputs: [{ name: "x", dataType: ONNX_FLOAT, shape: [] }],
        outputs: [{ name: "y", dataType: ONNX_FLOAT, shape: [] }],
      };
  return { graph, parts };
}

async function writeWeights(path: string, prefix: Uint8Array, length: number, seed: number): Promise<void> {
  const block = weightBlock(seed);
  const file = await open(path, "w");
  try {
    await file.write(prefix);
    for (let done = 0; done < length; done += BLOCK) {
      await file.write(block, 0, Math.min(BLOCK, length - done));
    }
  } finally {
    await file.close();
  }
}

/**
 * Writes a synthetic model to `path` (and its external-data files). Streams the weights, so a
 * multi-GB model costs one 1 MiB block of memory. Returns the files written.
 */
export async function writeSyntheticModel(path: string, options: SyntheticOptions): Promise<string[]> {
  const opts: Required<SyntheticOptions> = {
    kind: "matmul",
    external: false,
    externalFiles: 1,
    seed: 7,
    ...options,
  };
  const { graph, parts } = graphFor(opts, basename(path));
  if (opts.external) {
    await writeWeights(path, encodeModel(graph), 0, opts.seed);
    const dir = dirname(path);
    for (const [i, part] of parts.entries())
      await writeWeights(join(dir, part.location), new Uint8Array(), part.bytes, opts.seed + i);
    return [path, ...parts.map((p) => join(dir, p.location))];
  }
  const weightBytes = (parts[0] as { bytes: number }).bytes;
  await writeWeights(path, encodeModel(graph, { name: "W", length: weightBytes }), weightBytes, opts.seed);
  return [path];
}
