/**
 * A generated convolutional network for benchmarks: about 90 MB of float32 weights whose
 * session creation and run cost resemble a real vision model (strided and residual 3×3
 * convolutions, ReLU, max pooling, global average pooling, a 1000-way classifier, softmax),
 * not a single MatMul. Deterministic: the same seed writes the same bytes.
 *
 * x[1,3,64,64] → conv 3→64 s2 → conv 64→128 s2 → conv 128→256 s2 → conv 256→512 (8×8)
 *   → `blocks` × (conv 512→512 + residual add + ReLU) → max pool 2 → global average pool
 *   → Gemm 512→1000 → softmax → probabilities[1,1000]
 */
import { writeFile } from "node:fs/promises";
import { ONNX_FLOAT } from "../src/pack/onnx/element-types.js";
import { encodeModel, type OnnxInitializer, type OnnxNode } from "../src/pack/onnx/write-model.js";

/** Deterministic weights scaled like He initialisation, so activations stay finite through the stack. */
function weights(count: number, fanIn: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  const scale = Math.sqrt(2 / fanIn) * 0.5;
  let s = seed >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = ((s >>> 0) / 0xffffffff - 0.5) * 2 * scale;
  }
  return out;
}

export interface ConvNetOptions {
  /** Residual 512-channel blocks: 9 gives about 90 MB. */
  blocks?: number;
  seed?: number;
}

/** Writes the model to `path`; returns its size in bytes. */
export async function writeConvNet(path: string, options: ConvNetOptions = {}): Promise<number> {
  const blocks = options.blocks ?? 9;
  let seed = options.seed ?? 11;
  const nodes: OnnxNode[] = [];
  const initializers: OnnxInitializer[] = [];
  const conv = (input: string, output: string, cin: number, cout: number, stride: number) => {
    const w = `${output}.w`;
    const b = `${output}.b`;
    initializers.push(
      {
        name: w,
        dataType: ONNX_FLOAT,
        dims: [cout, cin, 3, 3],
        data: weights(cout * cin * 9, cin * 9, seed++),
      },
      { name: b, dataType: ONNX_FLOAT, dims: [cout], data: new Float32Array(cout).fill(0.01) },
    );
    nodes.push({
      op: "Conv",
      inputs: [input, w, b],
      outputs: [output],
      attributes: { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [stride, stride] },
    });
  };
  const relu = (input: string, output: string) =>
    nodes.push({ op: "Relu", inputs: [input], outputs: [output] });

  conv("x", "c1", 3, 64, 2);
  relu("c1", "r1");
  conv("r1", "c2", 64, 128, 2);
  relu("c2", "r2");
  conv("r2", "c3", 128, 256, 2);
  relu("c3", "r3");
  conv("r3", "c4", 256, 512, 1);
  relu("c4", "h0");
  for (let i = 1; i <= blocks; i++) {
    conv(`h${i - 1}`, `b${i}`, 512, 512, 1);
    nodes.push({ op: "Add", inputs: [`b${i}`, `h${i - 1}`], outputs: [`s${i}`] });
    relu(`s${i}`, `h${i}`);
  }
  nodes.push(
    {
      op: "MaxPool",
      inputs: [`h${blocks}`],
      outputs: ["p"],
      attributes: { kernel_shape: [2, 2], strides: [2, 2] },
    },
    { op: "GlobalAveragePool", inputs: ["p"], outputs: ["g"] },
    { op: "Flatten", inputs: ["g"], outputs: ["f"], attributes: { axis: 1 } },
    { op: "Gemm", inputs: ["f", "fc.w", "fc.b"], outputs: ["logits"], attributes: { transB: 1 } },
    { op: "Softmax", inputs: ["logits"], outputs: ["probabilities"], attributes: { axis: 1 } },
  );
  initializers.push(
    { name: "fc.w", dataType: ONNX_FLOAT, dims: [1000, 512], data: weights(1000 * 512, 512, seed++) },
    { name: "fc.b", dataType: ONNX_FLOAT, dims: [1000], data: new Float32Array(1000) },
  );
  const bytes = encodeModel({
    name: "conv-net",
    nodes,
    initializers,
    inputs: [{ name: "x", dataType: ONNX_FLOAT, shape: [1, 3, 64, 64] }],
    outputs: [{ name: "probabilities", dataType: ONNX_FLOAT, shape: [1, 1000] }],
  });
  await writeFile(path, bytes);
  return bytes.byteLength;
}
