/**
 * The packer's one owner of onnxruntime-web (the quality guard runs the model in Node on its
 * WASM backend). Imported on first use only (the module system caches it), so packing without
 * --trace-slots never loads it. One thread, so the guard does not compete with the seal workers
 * for cores: onnxruntime-web keeps that setting in its own process-wide `env`, set here before
 * every session the guard creates.
 */
export type Ort = typeof import("onnxruntime-web");

export async function loadOrt(): Promise<Ort> {
  const ort = await import("onnxruntime-web");
  ort.env.wasm.numThreads = 1;
  return ort;
}
