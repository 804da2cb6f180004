/** Where onnxruntime-web's runtime files come from when an app ships them (Node side). */
import { copyFile, mkdir } from "node:fs/promises";
import { createRequire } from "node:module";
import { basename, join } from "node:path";
import { ORT_RUNTIME_FILES } from "../core/ort-runtime.js";

export { ORT_RUNTIME_FILES };

/**
 * The package condition that selects onnxruntime-web's build without an embedded copy of the
 * glue and the `new URL("….wasm", import.meta.url)` reference that makes bundlers emit an
 * unused 28 MB copy of the WebAssembly binary.
 */
export const ORT_EXTERN_WASM_CONDITION = "onnxruntime-web-use-extern-wasm";

/**
 * Absolute paths of the runtime files, resolved from this package, so they are the files of
 * the very onnxruntime-web version the worker is bundled with (never a CDN, never a mismatch).
 */
export function ortRuntimeFiles(): { name: string; path: string }[] {
  const require = createRequire(import.meta.url);
  return ORT_RUNTIME_FILES.map((name) => {
    const path = require.resolve(`onnxruntime-web/${name}`);
    return { name: basename(path), path };
  });
}

export function contentType(name: string): string {
  return name.endsWith(".wasm") ? "application/wasm" : "text/javascript";
}

/**
 * Copies the runtime files into `dir` (created if missing), for bundlers other than Vite:
 * serve `dir` at the URL you give `loadModel` as `wasmPaths`. Returns the files written.
 */
export async function copyOrtRuntime(dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  for (const file of ortRuntimeFiles()) {
    const to = join(dir, file.name);
    await copyFile(file.path, to);
    written.push(to);
  }
  return written;
}
