/**
 * `modelvault/vite`: the Vite plugin that makes ModelVault work in an app's own Vite setup.
 *
 * @example
 * // vite.config.ts
 * import { defineConfig } from "vite";
 * import { modelvault } from "modelvault/vite";
 * export default defineConfig({ plugins: [modelvault()] });
 * // then loadModel(url, { wasmPaths: "/ort/", … }) — the default
 */
import { readFile } from "node:fs/promises";
import type { Plugin } from "vite";
import { contentType, ORT_EXTERN_WASM_CONDITION, ortRuntimeFiles } from "./ort-files.js";

export { copyOrtRuntime, ORT_RUNTIME_FILES } from "./ort-files.js";

export interface ModelVaultPluginOptions {
  /**
   * The URL path onnxruntime-web's runtime files are served from in development and written to
   * in the build (default `"/ort/"`). Give `loadModel` the same value as `wasmPaths`.
   */
  ortPath?: string;
  /**
   * Serve the dev server and `vite preview` with the cross-origin isolation headers
   * (COOP `same-origin`, COEP `require-corp`) that WASM threads need (default false: COEP also
   * blocks cross-origin resources that do not opt in, so it is the app's decision).
   */
  crossOriginIsolation?: boolean;
}

/** Headers that make a page cross-origin isolated (SharedArrayBuffer, hence WASM threads). */
export const CROSS_ORIGIN_ISOLATION_HEADERS: Readonly<Record<string, string>> = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
};

function normalizePath(path: string): string {
  if (!path.startsWith("/")) throw new Error(`modelvault(): ortPath must start with "/" (got ${path})`);
  return path.endsWith("/") ? path : `${path}/`;
}

/**
 * Serves onnxruntime-web's runtime files at `ortPath` in development (straight from the
 * installed package, untransformed: Vite would otherwise append `?import` to onnxruntime's
 * dynamic import and refuse it), emits exactly those files in the build, keeps ModelVault and
 * onnxruntime-web out of dependency pre-bundling (both locate files with
 * `new URL(…, import.meta.url)`, which pre-bundling moves), and selects onnxruntime-web's build
 * that does not drag an unused 28 MB copy of its WebAssembly into the output.
 */
export function modelvault(options: ModelVaultPluginOptions = {}): Plugin {
  const ortPath = normalizePath(options.ortPath ?? "/ort/");
  const files = ortRuntimeFiles();
  const isolation = options.crossOriginIsolation ? { ...CROSS_ORIGIN_ISOLATION_HEADERS } : {};
  return {
    name: "modelvault",
    async config(config) {
      // Vite ≥ 6 replaces, not extends, the default conditions when a list is given.
      const { defaultClientConditions } = await import("vite");
      const conditions = config.resolve?.conditions ?? [...defaultClientConditions];
      return {
        optimizeDeps: { exclude: ["modelvault", "onnxruntime-web"] },
        resolve: { conditions: [ORT_EXTERN_WASM_CONDITION, ...conditions] },
        worker: { format: "es" },
        server: { headers: isolation },
        preview: { headers: isolation },
      };
    },
    configureServer(server) {
      server.middlewares.use(async (req, res, next) => {
        const url = req.url ?? "";
        if (!url.startsWith(ortPath)) return next();
        const name = url.slice(ortPath.length).split("?")[0];
        const file = files.find((f) => f.name === name);
        if (!file) return next();
        try {
          const body = await readFile(file.path);
          res.writeHead(200, {
            ...isolation,
            "Content-Type": contentType(file.name),
            "Content-Length": String(body.byteLength),
            "Cross-Origin-Resource-Policy": "same-origin",
            "Cache-Control": "no-cache",
          });
          res.end(body);
        } catch (e) {
          next(e);
        }
      });
    },
    async generateBundle() {
      // Once, in the browser build: not in SSR or other environments' outputs.
      if (this.environment && this.environment.name !== "client") return;
      for (const file of files) {
        this.emitFile({
          type: "asset",
          fileName: `${ortPath.slice(1)}${file.name}`,
          source: await readFile(file.path),
        });
      }
    },
  };
}
