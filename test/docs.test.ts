import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { renderErrorDocs } from "../scripts/gen-error-docs.js";

const read = (path: string) => readFile(fileURLToPath(new URL(`../${path}`, import.meta.url)), "utf8");

describe("docs that must not drift", () => {
  it("docs/ERRORS.md is generated from the errors module (run npm run docs:errors)", async () => {
    expect(await read("docs/ERRORS.md")).toBe(renderErrorDocs());
  });

  it("the README quick start is what package.json and .ci/run run", async () => {
    const readme = await read("README.md");
    const pkg = JSON.parse(await read("package.json"));
    const ci = await read(".ci/run");
    expect(readme).toContain("npm install && npm start");
    expect(readme).toContain("npm test");
    expect(pkg.scripts.start).toBeTruthy();
    expect(pkg.scripts.test).toBeTruthy();
    const ciCommands = ci.split("\n").filter((l) => /^npm /.test(l));
    expect(ciCommands.at(-1)).toBe("npm test");
    expect(ciCommands).toContain("npm ci --no-audit --no-fund");
  });
});
