// Exposes the public client API (and plain onnxruntime-web for comparisons) to Playwright.
import * as ort from "onnxruntime-web";
import * as client from "../../../src/client/index.js";

ort.env.wasm.wasmPaths = "/node_modules/onnxruntime-web/dist/";
ort.env.wasm.numThreads = 1;
(globalThis as unknown as Record<string, unknown>).mv = client;
(globalThis as unknown as Record<string, unknown>).ort = ort;
document.title = "runtime ready";
