/**
 * `npm run build` (also run by `prepare`/`prepack`): the package as users install it.
 *
 * dist/index.js   browser client (`modelvault`): no bare imports, so bundlers need no config
 * dist/worker.js  the Worker, prebuilt; imports only `onnxruntime-web/webgpu`, which the app's
 *                 bundler resolves, so its JavaScript and the runtime files it serves match
 * dist/{core,pack,server,cli,vite,seal-worker}.js  Node entries (+ shared chunk-*.js): jose and
 *                 zod stay dependencies; hono, @hono/node-server and kysely are bundled so a
 *                 browser-only install never pulls them; database drivers and vite stay peers
 * dist/types/     declarations with declaration maps (tsc), one tree per entry's sources
 * dist/console/   the operations console (Vite), served by `modelvault serve` at /console/
 *
 * Why rolldown (Vite 8's own bundler, already installed) plus tsc: one tool for the browser and
 * Node bundles, with a JavaScript API for the one rewrite below; tsc (TypeScript 7, the native
 * compiler) emits the declarations. tsdown would do both but needs Node 22.
 */
import { execFile } from "node:child_process";
import { readdir, rm, writeFile } from "node:fs/promises";
import { builtinModules } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import MagicString from "magic-string";
import { type Plugin, rolldown } from "rolldown";
import { buildConsole } from "./build-console.js";
import { reachableDeclarations } from "./declaration-graph.js";

const root = fileURLToPath(new URL("../", import.meta.url));
const dist = join(root, "dist");
const run = promisify(execFile);

const SOURCE_WORKER_URL = 'new URL("../../worker/worker.ts", import.meta.url)';
const PACKAGED_WORKER_URL = 'new URL("./worker.js", import.meta.url)';

/** Points the client at the prebuilt worker beside it; fails the build if the pattern moved. */
function packagedWorkerUrl(): Plugin {
  let rewritten = 0;
  return {
    name: "modelvault-worker-url",
    transform(code, id) {
      if (!id.endsWith("src/client/load-model.ts")) return null;
      const s = new MagicString(code);
      const count = code.split(SOURCE_WORKER_URL).length - 1;
      rewritten += count;
      s.replaceAll(SOURCE_WORKER_URL, PACKAGED_WORKER_URL);
      return count ? { code: s.toString(), map: s.generateMap({ hires: true, source: id }) } : null;
    },
    buildEnd() {
      if (rewritten !== 1) throw new Error(`expected one worker URL to rewrite, found ${rewritten}`);
    },
  };
}

const nodeExternal = (id: string) =>
  id.startsWith("node:") ||
  builtinModules.includes(id) ||
  /^(jose|zod|better-sqlite3|pg|vite|onnxruntime-web)(\/|$)/.test(id);

async function bundle(
  input: Record<string, string>,
  options: { platform: "browser" | "node"; external?: (id: string) => boolean; plugins?: Plugin[] },
): Promise<void> {
  const build = await rolldown({
    input: Object.fromEntries(Object.entries(input).map(([name, file]) => [name, join(root, file)])),
    platform: options.platform,
    ...(options.external ? { external: options.external } : {}),
    plugins: options.plugins ?? [],
    tsconfig: join(root, options.platform === "browser" ? "tsconfig.web.json" : "tsconfig.json"),
  });
  await build.write({
    dir: dist,
    format: "esm",
    entryFileNames: "[name].js",
    chunkFileNames: "chunk-[hash].js",
    sourcemap: true,
    // Seal workers are found as `new URL("./seal-worker.js", import.meta.url)` from whichever
    // chunk holds the pool, so every file sits in dist/ itself.
  });
  await build.close();
}

async function declarations(): Promise<void> {
  for (const project of ["tsconfig.build.json", "tsconfig.build.web.json"]) {
    await run(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", join(root, project)], {
      cwd: root,
    }).catch((e: { stdout?: string; stderr?: string }) => {
      throw new Error(`tsc -p ${project} failed:\n${e.stdout ?? ""}${e.stderr ?? ""}`);
    });
  }
}

/**
 * Keeps only declarations reachable from the exports: internals (the server's routes, the
 * database schema) stay out of the package, and with them every import of a bundled package.
 */
async function pruneDeclarations(): Promise<void> {
  const { files } = await reachableDeclarations(root);
  const keep = new Set([...files].flatMap((f) => [f, `${f}.map`]));
  const types = join(dist, "types");
  for (const entry of await readdir(types, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name);
    if (entry.isFile() && !keep.has(path)) await rm(path);
  }
}

await rm(dist, { recursive: true, force: true });
await Promise.all([
  bundle({ index: "src/client/index.ts" }, { platform: "browser", plugins: [packagedWorkerUrl()] }),
  bundle(
    { worker: "worker/worker.ts" },
    { platform: "browser", external: (id) => /^onnxruntime-web(\/|$)/.test(id) },
  ),
  bundle(
    {
      core: "src/core/index.ts",
      pack: "src/pack/index.ts",
      server: "src/server/index.ts",
      cli: "src/cli.ts",
      vite: "src/vite/index.ts",
      "seal-worker": "src/pack/seal-worker.ts",
    },
    { platform: "node", external: nodeExternal },
  ),
  declarations(),
]);
// After the bundles: Vite's build runs its own rolldown, one at a time on this 2-core budget.
await buildConsole(join(dist, "console"));
await writeFile(
  join(dist, "types/worker.d.ts"),
  '// A Worker script, not a module to import: start it with `new Worker(url, { type: "module" })`\n// or pass its URL as loadModel\'s `workerUrl`.\nexport {};\n',
);
await pruneDeclarations();
process.stdout.write("built dist/\n");
