/**
 * The onnxruntime-web runtime files the worker loads from `wasmPaths` at run time. The worker
 * imports `onnxruntime-web`, whose WebGPU backend is JSEP: one JavaScript glue file and one
 * WebAssembly binary serve both WebGPU and WASM. (`onnxruntime-web/webgpu` would be smaller but
 * is a different WebGPU implementation, the asyncify build, with its own operator coverage.)
 */
export const ORT_RUNTIME_FILES: readonly string[] = [
  "ort-wasm-simd-threaded.jsep.mjs",
  "ort-wasm-simd-threaded.jsep.wasm",
];
