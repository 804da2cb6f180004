#!/usr/bin/env node
// The `modelvault` command runs the built CLI (dist/cli.js): plain JavaScript, nothing from
// devDependencies. In a checkout, `npm install` builds it (prepare); `npm run cli` runs sources.
import { existsSync } from "node:fs";

const cli = new URL("../dist/cli.js", import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write(
    "modelvault: dist/cli.js is missing; in a checkout of the repository run `npm run build`\n",
  );
  process.exit(1);
}
await import(cli.href);
