import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../../", import.meta.url));
const read = (path: string) => readFileSync(`${root}${path}`, "utf8");

/**
 * The checklist's rows per group, as its own total line states them
 * ("A16 + B11 + C12 + D7 + E8 + F6 + G8 + H7 + I6 + J8 + K11 + L5 = 105 rows").
 */
const GROUPS: Record<string, number> = {
  A: 16,
  B: 11,
  C: 12,
  D: 7,
  E: 8,
  F: 6,
  G: 8,
  H: 7,
  I: 6,
  J: 8,
  K: 11,
  L: 5,
};
const EXPECTED_IDS = Object.entries(GROUPS).flatMap(([g, n]) =>
  Array.from({ length: n }, (_, i) => `${g}${i + 1}`),
);
const STATUSES = new Set(["tested", "partial", "measured", "n/a", "open"]);
const NEEDS_TEST = new Set(["tested", "partial"]);

interface Row {
  id: string;
  property: string;
  status: string;
  evidence: string;
}

function rows(markdown: string): Row[] {
  return markdown
    .split("\n")
    .map((line) => /^\| ([A-L]\d+) \| (.+?) \| (\S+) \| (.*) \|$/.exec(line))
    .filter((m) => m !== null)
    .map(([, id, property, status, evidence]) => ({
      id: id as string,
      property: property as string,
      status: status as string,
      evidence: evidence as string,
    }));
}

/**
 * Every `describe`, `it` and `test` title written as a string literal in a test file, also
 * after a table (`it.each([...])("title")`, whose table may hold parentheses).
 */
function titles(source: string): Set<string> {
  const re =
    /(?:\b(?:it|test|describe)(?:\.(?:each|skipIf|runIf|concurrent|sequential)\([^)]*\))?|\]\))\(\s*(["'`])((?:\\.|(?!\1).)*)\1/gs;
  return new Set([...source.matchAll(re)].map((m) => (m[2] as string).replace(/\\(["'`\\])/g, "$1")));
}

const evidence = (cell: string) =>
  [...cell.matchAll(/`(test\/[^`]+\.(?:test|spec)\.ts)` › `([^`]+)`/g)].map(([, file, title]) => ({
    file: file as string,
    title: title as string,
  }));

describe("docs/SECURITY-COVERAGE.md cannot drift from the checklist or the tests", () => {
  const table = rows(read("docs/SECURITY-COVERAGE.md"));

  it("lists every checklist row once, with a property and a known status", () => {
    expect(table.map((r) => r.id)).toEqual(EXPECTED_IDS);
    for (const r of table) {
      expect(r.property.trim().length, r.id).toBeGreaterThan(5);
      expect(STATUSES.has(r.status), `${r.id}: status ${r.status}`).toBe(true);
    }
  });

  it("names, for every tested row, tests that exist under those exact titles", () => {
    const cache = new Map<string, Set<string>>();
    const missing: string[] = [];
    for (const r of table) {
      const named = evidence(r.evidence);
      if (NEEDS_TEST.has(r.status) && named.length === 0) missing.push(`${r.id}: no test named`);
      for (const { file, title } of named) {
        if (!existsSync(`${root}${file}`)) {
          missing.push(`${r.id}: ${file} does not exist`);
          continue;
        }
        if (!cache.has(file)) cache.set(file, titles(read(file)));
        if (!cache.get(file)?.has(title)) missing.push(`${r.id}: ${file} has no test "${title}"`);
      }
    }
    expect(missing).toEqual([]);
  });

  it("gives a reason for every row without a test", () => {
    for (const r of table.filter((r) => !NEEDS_TEST.has(r.status)))
      expect(r.evidence.replace(/`[^`]*`/g, "").trim().length, r.id).toBeGreaterThan(40);
  });
});
