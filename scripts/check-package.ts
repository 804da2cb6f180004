/**
 * Package checks, part of `npm run check`: packs the tarball (which builds), then
 * - publint (strict) and @arethetypeswrong (ESM-only profile) on the tarball itself;
 * - every declaration reachable from an export resolves: bare imports are dependencies,
 *   peers or Node built-ins, so a consumer's `tsc` never meets a package it lacks;
 * - size budgets, gzipped after minification (what an app's bundler ships): the client entry
 *   and the worker without onnxruntime-web;
 * - the operations console ships (dist/console, served at /console/) within its own budget.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { builtinModules } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { publint } from "publint";
import { formatMessage } from "publint/utils";
import { minify } from "rolldown/utils";
import { reachableDeclarations } from "./declaration-graph.js";
import { packTarball, REPO } from "./pack-tarball.js";

/** Gzipped, minified bytes: the budget a browser app pays for each file. */
// The client grew past 8 KiB with worker-crash recovery (ERR_WORKER_CRASHED, a fresh worker on the next load).
export const BUDGETS = { "dist/index.js": 9 * 1024, "dist/worker.js": 60 * 1024 } as const;
/** The console's scripts and styles together, gzipped as Vite emits them (already minified). */
export const CONSOLE_BUDGET = 40 * 1024;

const failures: string[] = [];
const say = (line: string) => process.stdout.write(`${line}\n`);
const pkg = JSON.parse(await readFile(join(REPO, "package.json"), "utf8"));
const packDir = await mkdtemp(join(tmpdir(), "modelvault-check-"));
const tarball = await packTarball(packDir);
say(`packed ${tarball.files.length} files, ${(tarball.size / 1024).toFixed(0)} KiB`);

const lint = await publint({
  pack: { tarball: (await readFile(tarball.path)).buffer as ArrayBuffer },
  strict: true,
});
for (const m of lint.messages) failures.push(`publint: ${formatMessage(m, pkg)}`);

const attw = await promisify(execFile)(
  join(REPO, "node_modules/.bin/attw"),
  [tarball.path, "--profile", "esm-only", "--format", "ascii"],
  { cwd: REPO, maxBuffer: 16 * 1024 * 1024 },
).catch((e: { stdout?: string }) => {
  failures.push(`attw:\n${e.stdout ?? String(e)}`);
});
if (attw) say("attw: no problems (ESM-only profile)");

// Declarations reachable from the exports import only what a consumer has.
const allowed = new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})]);
const { files, bare } = await reachableDeclarations(REPO);
for (const { file, spec } of bare) {
  const name = spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : (spec.split("/")[0] ?? "");
  if (!spec.startsWith("node:") && !builtinModules.includes(name) && !allowed.has(name))
    failures.push(`${file.slice(REPO.length)} imports "${spec}", which consumers do not install`);
}
say(`declarations: ${files.size} files reachable from the exports, all imports resolvable`);

for (const [file, budget] of Object.entries(BUDGETS)) {
  const source = await readFile(join(REPO, file), "utf8");
  const { code } = await minify(file, source, { compress: true, mangle: true });
  const gz = gzipSync(code, { level: 9 }).byteLength;
  say(`${file}: ${(gz / 1024).toFixed(1)} KiB gzipped, minified (budget ${(budget / 1024).toFixed(1)} KiB)`);
  if (gz > budget) failures.push(`${file} is ${gz} bytes gzipped, over its budget of ${budget}`);
}

// The console is in the tarball, index.html and every asset it names, and within budget.
const packed = new Set(tarball.files.map((f) => f.path));
if (!packed.has("dist/console/index.html")) failures.push("dist/console/index.html is not in the package");
let consoleGz = 0;
for (const name of await readdir(join(REPO, "dist/console/assets"))) {
  if (!packed.has(`dist/console/assets/${name}`))
    failures.push(`dist/console/assets/${name} is not in the package`);
  consoleGz += gzipSync(await readFile(join(REPO, "dist/console/assets", name)), { level: 9 }).byteLength;
}
say(
  `dist/console: ${(consoleGz / 1024).toFixed(1)} KiB gzipped (budget ${(CONSOLE_BUDGET / 1024).toFixed(1)} KiB)`,
);
if (consoleGz > CONSOLE_BUDGET)
  failures.push(`the console is ${consoleGz} bytes gzipped, over ${CONSOLE_BUDGET}`);

await rm(packDir, { recursive: true, force: true });
if (failures.length) {
  process.stderr.write(`package check failed:\n${failures.map((f) => `  - ${f}`).join("\n")}\n`);
  process.exit(1);
}
say("package check passed");
