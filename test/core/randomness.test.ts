import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { fromBase64Url } from "../../src/core/bytes.js";
import { generateApiKey } from "../../src/server/auth/api-keys.js";

const root = fileURLToPath(new URL("../../", import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts"))
    .map((e) => join(e.parentPath, e.name).slice(root.length));
}

/** Files that call `pattern`, among the sources that ship. */
const callers = (pattern: RegExp) =>
  ["src", "worker"].flatMap(sources).filter((f) => pattern.test(readFileSync(join(root, f), "utf8")));

describe("randomness (RFC 9449 §4.2, ASVS 11.5.1)", () => {
  it("secrets come from a CSPRNG with at least 128 bits; Math.random only jitters retries", () => {
    // Math.random is not a CSPRNG: it may only spread retry delays, never make an id or secret.
    expect(callers(/Math\.random\(/)).toEqual(["worker/retry.ts"]);
    // A v4 UUID has 122 random bits: only the request id (a log correlation id, not a secret) uses one.
    expect(callers(/randomUUID\(/)).toEqual(["src/server/http/app.ts"]);
    const keys = Array.from({ length: 10_000 }, () => generateApiKey());
    for (const k of keys.slice(0, 10)) expect(fromBase64Url(k.secret).byteLength).toBe(32);
    expect(new Set(keys.map((k) => k.id)).size).toBe(keys.length);
    expect(new Set(keys.map((k) => k.secret)).size).toBe(keys.length);
    // The other secrets and single-use values, by their source: 128 bits or more.
    const read = (f: string) => readFileSync(join(root, f), "utf8");
    expect(read("src/server/policy/issue-license.ts")).toMatch(/const jti = randomBytes\(16\)/);
    expect(read("src/core/dpop-proof.ts")).toMatch(/getRandomValues\(new Uint8Array\(16\)\)/);
    expect(read("src/pack/pack-model.ts")).toMatch(
      /const raw = crypto\.getRandomValues\(new Uint8Array\(32\)\)/,
    ); // the content key
    expect(read("src/server/start-server.ts")).toMatch(/value: randomBytes\(32\)/); // the nonce secret
  });
});
