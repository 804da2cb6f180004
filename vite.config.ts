import { defineConfig } from "vite";
import { CROSS_ORIGIN_ISOLATION_HEADERS, modelvault } from "./src/vite/index.js";

/**
 * Headers every page of ours is served with. Cross-origin isolation (COOP + COEP) lets
 * onnxruntime-web use WASM threads (SharedArrayBuffer); the CSP keeps injected script out,
 * since a page script could *use* the non-extractable device keys (see docs/THREAT-MODEL.md).
 */
export const securityHeaders = {
  ...CROSS_ORIGIN_ISOLATION_HEADERS,
  "Cross-Origin-Resource-Policy": "same-origin",
  "X-Content-Type-Options": "nosniff",
};

export default defineConfig({
  root: ".",
  server: { host: "127.0.0.1", strictPort: true, headers: securityHeaders },
  preview: { host: "127.0.0.1", strictPort: true, headers: securityHeaders },
  // Our own plugin, as users add it: onnxruntime-web's files at /ort/, no pre-bundling of it.
  plugins: [modelvault({ crossOriginIsolation: true })],
  // Pre-bundled up front: deps first seen in the worker would otherwise make the dev server
  // re-optimise and reload pages mid-run.
  optimizeDeps: { include: ["comlink", "idb", "jose", "zod"] },
  build: { target: "es2022", outDir: "demo-dist" },
});
