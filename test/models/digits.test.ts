import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-web";
import { describe, expect, it } from "vitest";
import { loadDigits } from "../../models/digits/dataset.js";

describe("sample digits model", () => {
  it("reaches at least 95% accuracy on the held-out split through onnxruntime", async () => {
    ort.env.wasm.numThreads = 1;
    const bytes = await readFile(fileURLToPath(new URL("../../models/digits/digits.onnx", import.meta.url)));
    const session = await ort.InferenceSession.create(bytes);
    expect(session.inputNames).toEqual(["pixels"]);
    const { heldOut } = loadDigits();
    expect(heldOut).toHaveLength(1500);
    const batch = new Float32Array(heldOut.length * 784);
    for (const [i, d] of heldOut.entries()) batch.set(d.pixels, i * 784);
    const out = await session.run({ pixels: new ort.Tensor("float32", batch, [heldOut.length, 784]) });
    const probs = out.probabilities?.data as Float32Array;
    let correct = 0;
    heldOut.forEach((d, i) => {
      const row = Array.from(probs.subarray(i * 10, i * 10 + 10));
      if (row.indexOf(Math.max(...row)) === d.label) correct++;
    });
    const accuracy = correct / heldOut.length;
    console.log(`digits held-out accuracy: ${(accuracy * 100).toFixed(2)}%`);
    expect(accuracy).toBeGreaterThanOrEqual(0.95);
    await session.release();
  });
});
