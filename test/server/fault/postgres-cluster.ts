import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import pg from "pg";
import { PG_URL } from "../databases.js";

const run = promisify(execFile);

/** A fresh database on the test server; `url` names it. Drop it with `drop()`. */
export async function createDatabase(): Promise<{ name: string; url: string; drop(): Promise<void> }> {
  if (!PG_URL) throw new Error("MODELVAULT_TEST_PG_URL is not set");
  const name = `mv_fault_${randomBytes(6).toString("hex")}`;
  await query(PG_URL, `create database ${name}`);
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    async drop() {
      await query(PG_URL as string, `drop database if exists ${name} with (force)`);
    },
  };
}

export async function query(url: string, text: string, values: unknown[] = []) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(text, values)).rows;
  } finally {
    await c.end();
  }
}

/**
 * The local Debian cluster serving MODELVAULT_TEST_PG_URL (matched by port), when this process
 * may restart it (root, pg_ctlcluster present); else why not.
 */
export function localCluster(): { version: string; name: string } | { skip: string } {
  if (!PG_URL) return { skip: "MODELVAULT_TEST_PG_URL is not set" };
  if (process.getuid?.() !== 0) return { skip: "not root: cannot restart PostgreSQL" };
  let listing: string;
  try {
    listing = execFileSync("pg_lsclusters", ["--no-header"], { encoding: "utf8" });
  } catch {
    return { skip: "pg_lsclusters not found: not a Debian PostgreSQL cluster" };
  }
  const port = new URL(PG_URL).port || "5432";
  const host = new URL(PG_URL).hostname;
  if (!["127.0.0.1", "localhost", "::1", "[::1]"].includes(host))
    return { skip: `PostgreSQL at ${host} is not local` };
  for (const line of listing.split("\n")) {
    const [version, name, clusterPort] = line.trim().split(/\s+/);
    if (version && name && clusterPort === port) return { version, name };
  }
  return { skip: `no local cluster listens on port ${port}` };
}

/** `pg_ctlcluster <version> <name> <action>`; resolves when it has finished. */
export async function pgCtl(c: { version: string; name: string }, action: "restart" | "start" | "stop") {
  await run("pg_ctlcluster", [c.version, c.name, action], { timeout: 60_000 });
}

/** Makes sure the cluster runs again (a test that stopped it must never leave it down). */
export async function ensureRunning(c: { version: string; name: string }) {
  const status = execFileSync("pg_lsclusters", ["--no-header", c.version, c.name], { encoding: "utf8" });
  if (!status.includes("online")) await pgCtl(c, "start");
}
