import type { TensorInfo } from "../../core/manifest.js";

/** ONNX TensorProto.DataType numbers (onnx/onnx.proto3) and the names the manifest uses. */
export const ONNX_ELEMENT_TYPES: Record<number, TensorInfo["type"]> = {
  1: "float32",
  2: "uint8",
  3: "int8",
  4: "uint16",
  5: "int16",
  6: "int32",
  7: "int64",
  8: "string",
  9: "bool",
  10: "float16",
  11: "float64",
  12: "uint32",
  13: "uint64",
  16: "bfloat16",
};

export const ONNX_FLOAT = 1;
export const ONNX_INT64 = 7;
