/**
 * Synthetic ONNX models of a chosen size, for tests and benchmarks; generated on demand.
 *
 * - "matmul": y[1,256] = MatMul(x[1,rows], W[rows,256]) with float32 W of about `bytes` bytes.
 *   Runs in onnxruntime; used by benchmarks.
 * - "bytes": W is a uint8 tensor of exactly `bytes` bytes; y = ReduceSum(Cast(W)) + x. Lets
 *   round-trip tests hit exact sizes (1 byte, one shard, one shard + 1).
 *
 * With `external`, W lives in "<model>.data" and the graph file stays tiny, as large models do.
 */
import { open } from "node:fs/promises";
import { basename } from "node:path";
import { ONNX_FLOAT } from "../src/pack/onnx/element-types.js";
import { encodeModel, type OnnxGraph, type OnnxInitializer } from "../src/pack/onnx/write-model.js";

export interface SyntheticOptions {
  bytes: number;
  kind?: "matmul" | "bytes";
  external?: boolean;
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

function graphFor(
  opts: Required<SyntheticOptions>,
  location: string,
): { graph: OnnxGraph; weightBytes: number } {
  const matmul = opts.kind === "matmul";
  const rows = Math.max(1, Math.floor(opts.bytes / (4 * COLS)));
  const weightBytes = matmul ? rows * COLS * 4 : opts.bytes;
  const weights: OnnxInitializer = {
    name: "W",
    dataType: matmul ? ONNX_FLOAT : ONNX_UINT8,
    dims: matmul ? [rows, COLS] : [weightBytes],
    ...(opts.external ? { external: { location, offset: 0, length: weightBytes } } : {}),
  };
  const graph: OnnxGraph = matmul
    ? {
        name: "synthetic-matmul",
        nodes: [{ op: "MatMul", inputs: ["x", "W"], outputs: ["y"] }],
        initializers: [weights],
        inputs: [{ name: "x", dataType: ONNX_FLOAT, shape: [1, rows] }],
        outputs: [{ name: "y", dataType: ONNX_FLOAT, shape: [1, COLS] }],
      }
    : {
        name: "synthetic-bytes",
        nodes: [
          { op: "Cast", inputs: ["W"], outputs: ["Wf"], attributes: { to: ONNX_FLOAT } },
          { op: "ReduceSum", inputs: ["Wf"], outputs: ["s"], attributes: { keepdims: 0 } },
          { op: "Add", inputs: ["s", "x"], outputs: ["y"] },
        ],
        initializers: [weights],
        inputs: [{ name: "x", dataType: ONNX_FLOAT, shape: [] }],
        outputs: [{ name: "y", dataType: ONNX_FLOAT, shape: [] }],
      };
  return { graph, weightBytes };
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
 * Writes a synthetic model to `path` (and `path.data` when external). Streams the weights, so a
 * multi-GB model costs one 1 MiB block of memory. Returns the files written.
 */
export async function writeSyntheticModel(path: string, options: SyntheticOptions): Promise<string[]> {
  const opts: Required<SyntheticOptions> = { kind: "matmul", external: false, seed: 7, ...options };
  const location = `${basename(path)}.data`;
  const { graph, weightBytes } = graphFor(opts, location);
  if (opts.external) {
    await writeWeights(path, encodeModel(graph), 0, opts.seed);
    await writeWeights(`${path}.data`, new Uint8Array(), weightBytes, opts.seed);
    return [path, `${path}.data`];
  }
  await writeWeights(path, encodeModel(graph, { name: "W", length: weightBytes }), weightBytes, opts.seed);
  return [path];
}
