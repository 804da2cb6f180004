/**
 * The packer's one owner of onnxruntime-web (the quality guard runs the model in Node on its
 * WASM backend). Imported on first use only, so packing without --trace-slots never loads it;
 * one thread, so the guard does not compete with the seal workers for cores (it runs before
 * they start, but a pack may run beside other work).
 */
export type Ort = typeof import("onnxruntime-web");

let loading: Promise<Ort> | undefined;

export function loadOrt(): Promise<Ort> {
  loading ??= import("onnxruntime-web").then((ort) => {
    ort.env.wasm.numThreads = 1;
    return ort;
  });
  return loading;
}
