/**
 * Builds the operations console (console/) with Vite into `outDir` (dist/console for the
 * package). Its own config, not the demo's: base /console/ (where `modelvault serve` serves it),
 * nothing inlined as data: URIs and no module-preload polyfill, so the output runs under the
 * console's CSP (script-src 'self', no inline script or style).
 */
import { fileURLToPath } from "node:url";
import { build } from "vite";

export async function buildConsole(outDir: string): Promise<void> {
  await build({
    configFile: false,
    root: fileURLToPath(new URL("../console/", import.meta.url)),
    base: "/console/",
    logLevel: "warn",
    build: {
      outDir,
      emptyOutDir: true,
      target: "es2022",
      assetsInlineLimit: 0,
      modulePreload: { polyfill: false },
      sourcemap: false,
      reportCompressedSize: false,
    },
  });
}

// `node --import tsx scripts/build-console.ts OUT` builds it alone (the browser tests do).
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await buildConsole(process.argv[2] ?? fileURLToPath(new URL("../dist/console/", import.meta.url)));
}
