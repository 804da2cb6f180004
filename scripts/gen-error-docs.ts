/** Writes docs/ERRORS.md from src/core/error-codes.ts: `npm run docs:errors`. A test keeps them in sync. */
import { writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { ERROR_CODES } from "../src/core/error-codes.js";

export function renderErrorDocs(): string {
  const rows = Object.entries(ERROR_CODES).map(
    ([code, { status, text }]) => `| \`${code}\` | ${status} | ${text} |`,
  );
  return [
    "# Error codes",
    "",
    "Generated from `src/core/error-codes.ts` by `npm run docs:errors`; do not edit by hand.",
    "",
    "Every error ModelVault raises on purpose is a `ModelVaultError` with a stable `code`, a",
    "human `message` that may change, and `data` with safe details (a field path, a shard index;",
    "never key material). The HTTP status is what the license server answers with; the CLI exits",
    "1 for these (2 for `ERR_CLI_USAGE`).",
    "",
    "| code | HTTP | meaning |",
    "| --- | --- | --- |",
    ...rows,
    "",
  ].join("\n");
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await writeFile(fileURLToPath(new URL("../docs/ERRORS.md", import.meta.url)), renderErrorDocs());
}
