/**
 * `npm run bench:large`: a multi-GB model with external data (default 2.5 GB in 5 files,
 * generated once, streamed), loaded in Chromium through loadModel and by plain onnxruntime-web
 * (fetching its external data itself) from the same production build and static server, one
 * fresh on-disk profile per load. Prints load time, one run, and peak renderer memory (page +
 * workers, VmHWM) per side with their ratios; with MODELVAULT_BENCH_CACHE=0 the secure side
 * skips the IndexedDB cache (default on, as loadModel's).
 *
 * MODELVAULT_BENCH_LARGE_BYTES (2.5e9), MODELVAULT_BENCH_LARGE_FILES (5), MODELVAULT_BENCH_ROUNDS (2),
 * MODELVAULT_BENCH_RUNS (1; 0 measures loads only: at 2.5 GB onnxruntime-web loads the model but
 * its first run fails with std::bad_alloc, with or without ModelVault).
 */
import { mkdir, readdir, stat } from "node:fs/promises";
import { loadavg } from "node:os";
import { join } from "node:path";
import { writeSyntheticModel } from "../models/synthetic.js";
import { REPO } from "../scripts/pack-tarball.js";
import { setUp } from "./load/fixtures.js";
import { measure, type Sample, type Side } from "./load/measure.js";

const BYTES = Number(process.env.MODELVAULT_BENCH_LARGE_BYTES ?? 2.5e9);
const FILES = Number(process.env.MODELVAULT_BENCH_LARGE_FILES ?? 5);
const ROUNDS = Number(process.env.MODELVAULT_BENCH_ROUNDS ?? 2);
const CACHE = process.env.MODELVAULT_BENCH_CACHE !== "0";
const RUNS = Number(process.env.MODELVAULT_BENCH_RUNS ?? 1);
const say = (line: string) => process.stdout.write(`${line}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

const dir = join(REPO, "bench/.out", `large-${BYTES}-${FILES}`);
const file = join(dir, "large.onnx");
await mkdir(dir, { recursive: true });
if (!(await readdir(dir)).includes("large.onnx")) {
  say(`generating a ${(BYTES / 1e9).toFixed(2)} GB model in ${FILES} external-data files…`);
  await writeSyntheticModel(file, { bytes: BYTES, external: true, externalFiles: FILES });
}
const externalData = (await readdir(dir)).filter((f) => f.endsWith(".data")).sort();
let total = (await stat(file)).size;
for (const f of externalData) total += (await stat(join(dir, f))).size;
const rows = Math.floor(BYTES / 1024);

say(
  `load average at start: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}`,
);
const setup = await setUp([
  {
    id: "large",
    name: `large (${(total / 2 ** 30).toFixed(2)} GiB, ${FILES} external files)`,
    file,
    externalData,
    input: "x",
    dims: [1, rows],
  },
]);
try {
  const model = setup.models[0];
  if (!model) throw new Error("no model");
  const samples: Record<Side, Sample[]> = { secure: [], plain: [] };
  for (let round = 0; round < ROUNDS; round++) {
    const order: Side[] = round % 2 ? ["plain", "secure"] : ["secure", "plain"];
    for (const side of order) {
      try {
        samples[side].push(
          await measure(setup, side, model, { threads: 1, runs: RUNS, warm: false, cache: CACHE }),
        );
      } catch (e) {
        say(`  ${side} round ${round + 1} failed: ${(e as Error).message.split("\n")[0]}`);
      }
    }
  }
  say(
    `\n${model.name}; secure cache ${CACHE ? "on" : "off"}; 1 WASM thread each side; medians of ${ROUNDS} rounds`,
  );
  const line = (label: string, key: keyof Sample, unit: "ms" | "MiB") => {
    const pick = (side: Side) =>
      samples[side].map((x) => x[key]).filter((v): v is number => typeof v === "number");
    const [s, p] = [pick("secure"), pick("plain")];
    if (!s.length || !p.length) return say(`  ${label}: secure ${s.length} samples, plain ${p.length}`);
    const fmt = (v: number) => (unit === "MiB" ? (v / 2 ** 20).toFixed(0) : v.toFixed(0));
    say(
      `  ${label.padEnd(10)} secure ${fmt(median(s)).padStart(7)} ${unit}  plain ${fmt(median(p)).padStart(7)} ${unit}  ratio ${(median(s) / median(p)).toFixed(3)}`,
    );
  };
  line("cold load", "cold", "ms");
  line("one run", "run", "ms");
  line("peak mem", "memory", "MiB");
} finally {
  await setup.close();
  say(
    `load average at end: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );
}
