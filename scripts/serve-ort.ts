import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Plugin } from "vite";

/**
 * Serves onnxruntime-web's runtime files at /ort/ straight from node_modules: self-hosted (no
 * CDN), untouched by Vite's module transforms (which would append ?import to the dynamic import
 * onnxruntime makes), with the isolation headers the page needs.
 */
export function serveOrt(root: string, headers: Record<string, string>): Plugin {
  const dist = join(root, "node_modules/onnxruntime-web/dist");
  return {
    name: "modelvault-serve-ort",
    configureServer(server) {
      server.middlewares.use(async (req, res, next) => {
        const m = /^\/ort\/([a-z0-9.-]+\.(mjs|wasm))(\?.*)?$/.exec(req.url ?? "");
        if (!m) return next();
        try {
          const body = await readFile(join(dist, m[1] as string));
          res.writeHead(200, {
            ...headers,
            "Content-Type": m[2] === "wasm" ? "application/wasm" : "text/javascript",
            "Cache-Control": "no-cache",
          });
          res.end(body);
        } catch {
          next();
        }
      });
    },
  };
}
