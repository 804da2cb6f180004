/**
 * `npm run mutation`: does every check have a test that notices it is gone? Deletes one guard at
 * a time from the security-relevant code (src/core, src/server/auth, src/server/policy,
 * src/server/usage, worker/) and runs the Node tests that import that file; a mutant is killed
 * when some test fails. Guards are what the issue calls "guarded lines":
 *
 *   - a `throw` statement (the refusal itself),
 *   - an `if` without `else` whose branch throws or returns (the check around a refusal),
 *   - a `.where(...)` of a query (the filter that scopes rows to a principal, a device, a state).
 *
 * Slow (minutes per dozen mutants): not part of `npm test`. Run it under the shared lock:
 * `flock /tmp/mv-heavy.lock npm run mutation`. Options: `--only <path substring>`,
 * `--limit N`, `--list` (print mutants and their tests, run nothing). Writes
 * test-results/mutation[-<only>].json.
 * PostgreSQL and Chromium suites are not run per mutant (SQLite and Node only), so a guard only
 * those suites exercise counts as surviving here.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAst } from "rolldown/parseAst";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const TARGETS = ["src/core", "src/server/auth", "src/server/policy", "src/server/usage", "worker"];
// Not reachable from Node tests: the worker's entry and the comlink glue run only in a browser.
const SKIP = new Set(["worker/worker.ts", "src/core/comlink-glue.ts"]);
const TIMEOUT_MS = 10 * 60_000;

interface Mutant {
  file: string;
  line: number;
  kind: "throw" | "guard" | "where";
  start: number;
  end: number;
  replacement: string;
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

/** A branch that is nothing but a throw: deleting the `if` or the `throw` is the same mutant. */
function onlyThrows(n: Node): boolean {
  if (n.type === "ThrowStatement") return true;
  return (
    n.type === "BlockStatement" &&
    (n.body as Node[]).length === 1 &&
    (n.body as Node[])[0]?.type === "ThrowStatement"
  );
}

function exits(n: Node | undefined): boolean {
  if (!n) return false;
  if (n.type === "ThrowStatement" || n.type === "ReturnStatement") return true;
  if (n.type === "BlockStatement") return (n.body as Node[]).some(exits);
  return false;
}

function files(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(root, path)).isDirectory()) return files(path);
    return path.endsWith(".ts") && !path.endsWith(".d.ts") ? [path] : [];
  });
}

export function mutantsOf(file: string): Mutant[] {
  const source = readFileSync(join(root, file), "utf8");
  const ast = parseAst(source, { lang: "ts" }, file);
  const lineOf = (offset: number) => source.slice(0, offset).split("\n").length;
  const out: Mutant[] = [];
  const add = (kind: Mutant["kind"], start: number, end: number, replacement: string) =>
    out.push({
      file,
      line: lineOf(start),
      kind,
      start,
      end,
      replacement,
      text: source.slice(start, end).replace(/\s+/g, " ").slice(0, 100),
    });
  walk(ast, (n) => {
    if (n.type === "ThrowStatement") add("throw", n.start, n.end, "{}");
    const branch = n.consequent as Node;
    if (n.type === "IfStatement" && !n.alternate && exits(branch) && !onlyThrows(branch))
      add("guard", n.start, n.end, "{}");
    if (n.type === "CallExpression") {
      const callee = n.callee as Node;
      if (
        callee.type === "MemberExpression" &&
        (callee.property as Node & { name?: string }).name === "where"
      ) {
        const object = callee.object as Node;
        add("where", object.end, n.end, "");
      }
    }
  });
  // An if-guard whose only statement is a throw gives the same mutant twice; keep one.
  const seen = new Set<string>();
  return out.filter((m) => {
    const mutated = source.slice(0, m.start) + m.replacement + source.slice(m.end);
    if (seen.has(mutated)) return false;
    seen.add(mutated);
    return true;
  });
}

/** Relative imports of a file, resolved to repository paths (".js" specifiers name ".ts" files). */
function importsOf(file: string): string[] {
  const source = readFileSync(join(root, file), "utf8");
  const specs = [
    ...source.matchAll(
      /(?:import|export)[^'"]*?from\s+["'](\.[^"']+)["']|import\(\s*["'](\.[^"']+)["']\s*\)/g,
    ),
  ];
  return specs
    .map((m) => (m[1] ?? m[2]) as string)
    .map((spec) => relative(root, resolve(root, dirname(file), spec.replace(/\.js$/, ".ts"))))
    .filter((p) => existsSync(join(root, p)));
}

/** Test files whose import closure contains `target`. */
function testsImporting(target: string, tests: string[]): string[] {
  const edges = new Map<string, string[]>();
  const depsOf = (file: string) => {
    let d = edges.get(file);
    if (!d) {
      d = importsOf(file);
      edges.set(file, d);
    }
    return d;
  };
  const reaches = (from: string): boolean => {
    const seen = new Set<string>([from]);
    const stack = [from];
    while (stack.length > 0) {
      const file = stack.pop() as string;
      if (file === target) return true;
      for (const dep of depsOf(file))
        if (!seen.has(dep)) {
          seen.add(dep);
          stack.push(dep);
        }
    }
    return false;
  };
  return tests.filter(reaches);
}

function runTests(tests: string[]): { passed: boolean; ms: number } {
  const started = Date.now();
  const r = spawnSync("npx", ["vitest", "run", "--bail=1", "--reporter=dot", ...tests], {
    cwd: root,
    env: { ...process.env, MODELVAULT_TEST_PG_URL: "" },
    encoding: "utf8",
    timeout: TIMEOUT_MS,
  });
  return { passed: r.status === 0, ms: Date.now() - started };
}

function main(): void {
  const args = process.argv.slice(2);
  const only = args.includes("--only") ? args[args.indexOf("--only") + 1] : undefined;
  const limit = args.includes("--limit")
    ? Number(args[args.indexOf("--limit") + 1])
    : Number.POSITIVE_INFINITY;
  // Packaging tests build and install the package (minutes each) and check no security logic.
  const tests = files("test").filter((f) => f.endsWith(".test.ts") && !f.startsWith("test/consumer/"));
  const targets = TARGETS.flatMap(files).filter((f) => !SKIP.has(f) && (!only || f.includes(only)));
  const mutants = targets.flatMap(mutantsOf).slice(0, limit);
  if (args.includes("--list")) {
    for (const file of new Set(mutants.map((m) => m.file)))
      console.log(`${file}: tests ${testsImporting(file, tests).join(" ") || "(none)"}`);
    for (const m of mutants) console.log(`${m.file}:${m.line} ${m.kind} ${m.text}`);
    console.log(`${mutants.length} mutants`);
    return;
  }
  const results: (Mutant & { status: "killed" | "survived" | "untested"; tests: string[]; ms: number })[] =
    [];
  const byFile = new Map(
    [...new Set(mutants.map((m) => m.file))].map((f) => [f, testsImporting(f, tests)] as const),
  );
  // The tests must pass unmutated, or every mutant would look killed.
  const all = [...new Set([...byFile.values()].flat())];
  if (all.length > 0 && !runTests(all).passed)
    throw new Error("the tests fail without any mutation: fix them first");
  for (const m of mutants) {
    const covering = byFile.get(m.file) ?? [];
    const original = readFileSync(join(root, m.file), "utf8");
    let outcome: { passed: boolean; ms: number } = { passed: true, ms: 0 };
    if (covering.length > 0) {
      writeFileSync(join(root, m.file), original.slice(0, m.start) + m.replacement + original.slice(m.end));
      try {
        outcome = runTests(covering);
      } finally {
        writeFileSync(join(root, m.file), original);
      }
    }
    const status = covering.length === 0 ? "untested" : outcome.passed ? "survived" : "killed";
    results.push({ ...m, status, tests: covering, ms: outcome.ms });
    console.log(
      `${status.padEnd(8)} ${m.file}:${m.line} ${m.kind} ${m.text} (${Math.round(outcome.ms / 1000)} s)`,
    );
  }
  const killed = results.filter((r) => r.status === "killed").length;
  const score = results.length ? (100 * killed) / results.length : 0;
  mkdirSync(join(root, "test-results"), { recursive: true });
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
