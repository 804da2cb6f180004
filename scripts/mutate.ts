/**
 * `npm run mutation`: does every check have a test that notices it is gone? Deletes one guard at
 * a time from the security-relevant code (src/core, src/server/auth, src/server/policy,
 * src/server/usage, worker/) and runs the tests that could notice; a mutant is killed when one
 * of them fails. Guards are what the issue calls "guarded lines":
 *
 *   - a `throw` statement (the refusal itself),
 *   - an `if` without `else` whose branch returns or throws (the check around a refusal),
 *   - a `.where(...)` of a query (the filter that scopes rows to a principal, a device, a state).
 *
 * Which tests could notice is measured, not guessed: a first run of the Node suite with every
 * guard instrumented records, per test file, which refusals fired and which queries ran. Deleting
 * a refusal changes nothing in a test where it never fires, so each mutant runs only the test
 * files that reached it, and one that no test reaches is reported as "unreached" without a run.
 *
 * Slow: not part of `npm test`. Run it under the shared lock:
 * `flock /tmp/mv-heavy.lock npm run mutation [-- --only <source substring>] [--tests <test substring>] [--list]`.
 * Writes
 * test-results/mutation[-<only>].json. SQLite and Node only: the PostgreSQL and Chromium suites
 * are not run per mutant, and tests that run the CLI in a child process record no hits.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAst } from "rolldown/parseAst";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const TARGETS = ["src/core", "src/server/auth", "src/server/policy", "src/server/usage", "worker"];
// Not reachable from Node tests: the worker's entry and the comlink glue run only in a browser.
const SKIP = new Set(["worker/worker.ts", "src/core/comlink-glue.ts"]);
const TIMEOUT_MS = 10 * 60_000;
const HITS = join(root, "test-results/mutation-hits");

interface Mutant {
  id: string;
  file: string;
  line: number;
  kind: "throw" | "guard" | "where";
  start: number;
  end: number;
  replacement: string;
  /** Where the instrumented copy records that this mutant's code ran. */
  probe: { start: number; end: number; open: string; close: string };
  text: string;
}

type Node = { type: string; start: number; end: number; [k: string]: unknown };

function walk(node: unknown, visit: (n: Node) => void): void {
  if (Array.isArray(node)) for (const c of node) walk(c, visit);
  else if (node && typeof node === "object" && typeof (node as Node).type === "string") {
    visit(node as Node);
    for (const [k, v] of Object.entries(node)) if (k !== "type" && v && typeof v === "object") walk(v, visit);
  }
}

const exits = (n: Node | undefined): boolean =>
  !!n &&
  (n.type === "ThrowStatement" ||
    n.type === "ReturnStatement" ||
    (n.type === "BlockStatement" && (n.body as Node[]).some(exits)));

/** A branch that is nothing but a throw: deleting the `if` or the `throw` is the same mutant. */
const onlyThrows = (n: Node): boolean =>
  n.type === "ThrowStatement" ||
  (n.type === "BlockStatement" &&
    (n.body as Node[]).length === 1 &&
    (n.body as Node[])[0]?.type === "ThrowStatement");

function files(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(root, path)).isDirectory()) return files(path);
    return path.endsWith(".ts") && !path.endsWith(".d.ts") ? [path] : [];
  });
}

const hit = (id: string) =>
  `(globalThis as { __mvHit?: (id: string) => void }).__mvHit?.(${JSON.stringify(id)})`;

export function mutantsOf(file: string): Mutant[] {
  const source = readFileSync(join(root, file), "utf8");
  const ast = parseAst(source, { lang: "ts" }, file);
  const out: Mutant[] = [];
  const add = (
    kind: Mutant["kind"],
    start: number,
    end: number,
    replacement: string,
    probe: Node,
    where = false,
  ) => {
    const line = source.slice(0, start).split("\n").length;
    const id = `${file}:${line}:${start}`;
    out.push({
      id,
      file,
      line,
      kind,
      start,
      end,
      replacement,
      probe: where
        ? { start: probe.start, end: probe.end, open: `(${hit(id)}, `, close: ")" }
        : { start: probe.start, end: probe.end, open: `{ ${hit(id)};`, close: "}" },
      text: source.slice(start, end).replace(/\s+/g, " ").slice(0, 100),
    });
  };
  walk(ast, (n) => {
    if (n.type === "ThrowStatement") add("throw", n.start, n.end, "{}", n);
    const branch = n.consequent as Node;
    if (n.type === "IfStatement" && !n.alternate && exits(branch) && !onlyThrows(branch))
      add("guard", n.start, n.end, "{}", branch);
    if (n.type === "CallExpression") {
      const callee = n.callee as Node;
      if (
        callee.type === "MemberExpression" &&
        (callee.property as Node & { name?: string }).name === "where"
      ) {
        const object = callee.object as Node;
        add("where", object.end, n.end, "", object, true);
      }
    }
  });
  return out;
}

/** The file with every mutant's probe inserted: opening and closing text nest like brackets. */
function instrument(file: string, mutants: Mutant[]): string {
  const source = readFileSync(join(root, file), "utf8");
  const at = new Map<number, { opens: Mutant[]; closes: Mutant[] }>();
  const slot = (p: number) =>
    at.get(p) ?? at.set(p, { opens: [], closes: [] }).get(p) ?? { opens: [], closes: [] };
  for (const m of mutants) {
    slot(m.probe.start).opens.push(m);
    slot(m.probe.end).closes.push(m);
  }
  const size = (m: Mutant) => m.probe.end - m.probe.start;
  let out = "";
  let last = 0;
  for (const p of [...at.keys()].sort((a, b) => a - b)) {
    const { opens, closes } = at.get(p) as { opens: Mutant[]; closes: Mutant[] };
    out += source.slice(last, p);
    out += closes
      .sort((a, b) => size(a) - size(b))
      .map((m) => m.probe.close)
      .join("");
    out += opens
      .sort((a, b) => size(b) - size(a))
      .map((m) => m.probe.open)
      .join("");
    last = p;
  }
  return out + source.slice(last);
}

function runTests(tests: string[], config?: string): { passed: boolean; ms: number } {
  const started = Date.now();
  const r = spawnSync(
    "npx",
    ["vitest", "run", "--bail=1", "--reporter=dot", ...(config ? ["--config", config] : []), ...tests],
    {
      cwd: root,
      env: { ...process.env, MODELVAULT_TEST_PG_URL: "", MV_MUTATION_HITS: HITS },
      encoding: "utf8",
      timeout: TIMEOUT_MS,
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  return { passed: r.status === 0, ms: Date.now() - started };
}

/** Runs the suite once with every probe in place; returns, per mutant, the test files that reached it. */
function measureReach(mutants: Mutant[], tests: string[]): { reach: Map<string, string[]>; passed: boolean } {
  rmSync(HITS, { recursive: true, force: true });
  mkdirSync(HITS, { recursive: true });
  const setup = join(HITS, "setup.ts");
  writeFileSync(
    setup,
    `import { writeFileSync } from "node:fs";
import { afterAll, expect } from "vitest";
const hits = new Set<string>();
(globalThis as { __mvHit?: (id: string) => void }).__mvHit = (id) => hits.add(id);
afterAll(() => {
  const test = expect.getState().testPath ?? "unknown";
  writeFileSync(${JSON.stringify(HITS)} + "/" + Buffer.from(test).toString("base64url") + ".json", JSON.stringify({ test, hits: [...hits] }));
});
`,
  );
  const config = join(HITS, "vitest.config.ts");
  writeFileSync(
    config,
    `import base from ${JSON.stringify(join(root, "vitest.config.ts"))};
export default { ...base, test: { ...base.test, setupFiles: [${JSON.stringify(setup)}], bail: 0 } };
`,
  );
  const byFile = new Map<string, Mutant[]>();
  for (const m of mutants) byFile.set(m.file, [...(byFile.get(m.file) ?? []), m]);
  const originals = new Map([...byFile.keys()].map((f) => [f, readFileSync(join(root, f), "utf8")]));
  let passed = false;
  try {
    for (const [file, ms] of byFile) writeFileSync(join(root, file), instrument(file, ms));
    passed = runTests(tests, config).passed;
  } finally {
    for (const [file, text] of originals) writeFileSync(join(root, file), text);
  }
  const reach = new Map<string, string[]>();
  for (const name of readdirSync(HITS).filter((n) => n.endsWith(".json"))) {
    const { test, hits } = JSON.parse(readFileSync(join(HITS, name), "utf8")) as {
      test: string;
      hits: string[];
    };
    const rel = test.startsWith(root) ? test.slice(root.length + 1) : test;
    for (const id of hits) reach.set(id, [...(reach.get(id) ?? []), rel]);
  }
  return { reach, passed };
}

function main(): void {
  const args = process.argv.slice(2);
  const only = args.includes("--only") ? args[args.indexOf("--only") + 1] : undefined;
  // Packaging tests build and install the package (minutes each) and check no security logic.
  const onlyTests = args.includes("--tests") ? args[args.indexOf("--tests") + 1] : undefined;
  const tests = files("test").filter(
    (f) => f.endsWith(".test.ts") && !f.startsWith("test/consumer/") && (!onlyTests || f.includes(onlyTests)),
  );
  const targets = TARGETS.flatMap(files).filter((f) => !SKIP.has(f) && (!only || f.includes(only)));
  const mutants = targets.flatMap(mutantsOf);
  if (args.includes("--list")) {
    for (const m of mutants) console.log(`${m.file}:${m.line} ${m.kind} ${m.text}`);
    console.log(`${mutants.length} mutants`);
    return;
  }
  const { reach, passed } = measureReach(mutants, tests);
  // The instrumented run doubles as the baseline: the probes change no behaviour.
  if (!passed) throw new Error("the tests fail without any mutation (or with the probes): fix them first");
  type Result = Mutant & { status: "killed" | "survived" | "unreached"; tests: string[]; ms: number };
  const results: Result[] = [];
  for (const m of mutants) {
    const covering = [...new Set(reach.get(m.id) ?? [])].filter((t) => existsSync(join(root, t)));
    const original = readFileSync(join(root, m.file), "utf8");
    let outcome = { passed: true, ms: 0 };
    if (covering.length > 0) {
      writeFileSync(join(root, m.file), original.slice(0, m.start) + m.replacement + original.slice(m.end));
      try {
        outcome = runTests(covering);
      } finally {
        writeFileSync(join(root, m.file), original);
      }
    }
    const status = covering.length === 0 ? "unreached" : outcome.passed ? "survived" : "killed";
    results.push({ ...m, status, tests: covering, ms: outcome.ms });
    console.log(
      `${status.padEnd(9)} ${m.file}:${m.line} ${m.kind} ${m.text} (${covering.length} files, ${Math.round(outcome.ms / 1000)} s)`,
    );
  }
  const killed = results.filter((r) => r.status === "killed").length;
  const score = results.length ? (100 * killed) / results.length : 0;
  const name = only ? `mutation-${only.replace(/[^A-Za-z0-9]+/g, "-").replace(/^-|-$/g, "")}` : "mutation";
  writeFileSync(
    join(root, `test-results/${name}.json`),
    JSON.stringify({ score, killed, total: results.length, results }, null, 2),
  );
  console.log(`\nmutation score: ${killed}/${results.length} killed = ${score.toFixed(1)}%`);
  for (const r of results.filter((x) => x.status !== "killed"))
    console.log(`  ${r.status}: ${r.file}:${r.line} ${r.text}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) main();
