/**
 * A tiny model that onnxruntime-web's WebGPU backend loads but cannot run: MaxPool with
 * `ceil_mode = 1` (its WebGPU kernel lacks the extra padding). x[1,1,5,5] → y[1,1,3,3].
 * The runtime's backend self-test must notice and fall back to WASM.
 */
import { writeFile } from "node:fs/promises";
import { ONNX_FLOAT } from "../src/pack/onnx/element-types.js";
import { encodeModel } from "../src/pack/onnx/write-model.js";

export async function writePoolCeilModel(path: string): Promise<void> {
  const bytes = encodeModel({
    name: "pool-ceil",
    nodes: [
      {
        op: "MaxPool",
        inputs: ["x"],
        outputs: ["y"],
        attributes: { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 },
      },
    ],
    initializers: [],
    inputs: [{ name: "x", dataType: ONNX_FLOAT, shape: [1, 1, 5, 5] }],
    outputs: [{ name: "y", dataType: ONNX_FLOAT, shape: [1, 1, 3, 3] }],
  });
  await writeFile(path, bytes);
}
