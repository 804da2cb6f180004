/**
 * `npm pack` of the repository, as it would be published: runs `prepare` (the build) and
 * returns the tarball with its file list. Shared by the package check and the consumer tests.
 */
import { execFile } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

export const REPO = fileURLToPath(new URL("../", import.meta.url));

export interface PackedTarball {
  path: string;
  files: { path: string; size: number }[];
  size: number;
  unpackedSize: number;
}

export async function packTarball(destination: string): Promise<PackedTarball> {
  await mkdir(destination, { recursive: true });
  const { stdout } = await promisify(execFile)("npm", ["pack", "--json", "--pack-destination", destination], {
    cwd: REPO,
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, npm_config_loglevel: "error" },
  });
  // prepare's own output precedes npm's JSON report.
  const report = JSON.parse(stdout.slice(stdout.indexOf("[\n"))) as {
    filename: string;
    files: { path: string; size: number }[];
    size: number;
    unpackedSize: number;
  }[];
  const [packed] = report;
  if (!packed) throw new Error("npm pack reported nothing");
  return {
    path: join(destination, packed.filename),
    files: packed.files,
    size: packed.size,
    unpackedSize: packed.unpackedSize,
  };
}
