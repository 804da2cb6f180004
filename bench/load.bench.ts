/**
 * `npm run bench:load`: secure loading against plain onnxruntime-web, measured in one run on
 * one machine, in headless Chromium, from a production build (the benchmark app is built by
 * Vite from the packed tarball, as a user's app is).
 *
 * Both sides: a page of the same app, cross-origin isolated, WASM backend, the same thread
 * count, onnxruntime-web in a dedicated Worker (ours: loadModel's; plain: a Worker of the app's
 * own), the same runtime files from /ort/, the same static server (ETag, max-age=3600).
 * Per round and side: a fresh on-disk profile (launchPersistentContext) for the cold load and
 * per-run latency, then a reload in that profile for the warm load, asserted to have come from
 * the cache (plain: Resource Timing transferSize 0; secure: no shard from the network). Peak
 * renderer memory (VmHWM: page + workers) after the cold load and the runs. Per-run latency is
 * timed from the page on both sides: one message to the worker and back per run, inputs and
 * outputs transferred. Network profiles:
 * loopback, and 100 Mbit/s with 20 ms RTT through CDP. Rounds interleave the sides and
 * alternate which goes first; medians and ratios are printed, with the load average and a
 * warning where rounds spread more than 20%.
 *
 * MODELVAULT_BENCH_ROUNDS (5), MODELVAULT_BENCH_THREADS (1), MODELVAULT_BENCH_RUNS (20),
 * MODELVAULT_BENCH_MODELS (comma-separated ids; all), MODELVAULT_BENCH_PROFILES (loopback,throttled).
 */
import { loadavg } from "node:os";
import { loadBenchModels, setUp } from "./load/fixtures.js";
import { measure, type Sample, type Side } from "./load/measure.js";

const ROUNDS = Number(process.env.MODELVAULT_BENCH_ROUNDS ?? 5);
const THREADS = Number(process.env.MODELVAULT_BENCH_THREADS ?? 1);
const RUNS = Number(process.env.MODELVAULT_BENCH_RUNS ?? 20);
const PROFILES = [
  { name: "loopback", conditions: undefined },
  {
    name: "100 Mbit/s, 20 ms RTT",
    conditions: { offline: false, latency: 20, downloadThroughput: 12_500_000, uploadThroughput: 12_500_000 },
  },
].filter((p) =>
  (process.env.MODELVAULT_BENCH_PROFILES ?? "loopback,throttled").includes(
    p.conditions ? "throttled" : "loopback",
  ),
);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const spread = (xs: number[]) => (Math.max(...xs) - Math.min(...xs)) / median(xs);
const say = (line: string) => process.stdout.write(`${line}\n`);

function report(label: string, secure: number[], plain: number[], unit: "ms" | "MiB", target: string) {
  const s = median(secure);
  const p = median(plain);
  const fmt = (v: number) => (unit === "MiB" ? (v / 2 ** 20).toFixed(0) : v.toFixed(v < 20 ? 2 : 0));
  const noisy = [secure, plain].some((xs) => xs.length > 2 && spread(xs) > 0.2);
  say(
    `  ${label.padEnd(10)} secure ${fmt(s).padStart(6)} ${unit}  plain ${fmt(p).padStart(6)} ${unit}  ratio ${(s / p).toFixed(3)}  (target ${target})${noisy ? "  ! rounds spread > 20%" : ""}`,
  );
}

const wanted = process.env.MODELVAULT_BENCH_MODELS?.split(",");
say(
  `load average at start: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}; ${ROUNDS} rounds, ${THREADS} WASM thread(s) each side`,
);
const setup = await setUp(await loadBenchModels());
try {
  for (const model of setup.models.filter((m) => !wanted || wanted.includes(m.id))) {
    for (const profile of PROFILES) {
      const samples: Record<Side, Sample[]> = { secure: [], plain: [] };
      for (let round = 0; round < ROUNDS; round++) {
        const order: Side[] = round % 2 ? ["plain", "secure"] : ["secure", "plain"];
        for (const side of order)
          samples[side].push(
            await measure(setup, side, model, {
              conditions: profile.conditions,
              runs: RUNS,
              threads: THREADS,
            }),
          );
      }
      const first = samples.secure[0] as Sample;
      const base = samples.plain[0] as Sample;
      say(`\n${model.name}, ${profile.name}`);
      say(
        `  secure: ${first.threads} thread(s), isolated ${first.isolated}; plain: ${base.threads} thread(s), isolated ${base.isolated}; backend wasm; warm loads verified from cache`,
      );
      const col = (side: Side, key: keyof Sample) =>
        samples[side].map((x) => x[key]).filter((v): v is number => typeof v === "number");
      report(
        "cold load",
        col("secure", "cold"),
        col("plain", "cold"),
        "ms",
        profile.conditions ? "<= 1.03" : "<= 1.10",
      );
      report("warm load", col("secure", "warm"), col("plain", "warm"), "ms", "<= 1.05");
      if (!profile.conditions) {
        report("per run", col("secure", "run"), col("plain", "run"), "ms", "<= 1.03");
        report("peak mem", col("secure", "memory"), col("plain", "memory"), "MiB", "<= 1.10");
      }
    }
  }
} finally {
  await setup.close();
  say(
    `\nload average at end: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );
}
