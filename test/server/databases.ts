import { randomBytes } from "node:crypto";
import pg from "pg";
import type { DatabaseConfig } from "../../src/server/db/open-database.js";
import { cleanup } from "../fixtures.js";

/** Set to run the suites against PostgreSQL too, e.g. postgres://modelvault:modelvault@127.0.0.1:5432/modelvault */
export const PG_URL = process.env.MODELVAULT_TEST_PG_URL;

/** A fresh, empty PostgreSQL database for one test file, dropped afterwards. */
export async function freshPostgres(): Promise<DatabaseConfig> {
  if (!PG_URL) throw new Error("MODELVAULT_TEST_PG_URL is not set");
  const name = `mv_test_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  // Best effort: a test's own servers may still be closing their pools; a database left behind
  // is reported, never a reason to fail the test that used it.
  cleanup(async () => {
    for (let attempt = 0; attempt < 3; attempt++) {
      const c = new pg.Client({ connectionString: PG_URL });
      try {
        await c.connect();
        await c.query(`drop database if exists ${name} with (force)`);
        return;
      } catch (e) {
        if (attempt === 2) console.warn(`could not drop test database ${name}: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 500));
      } finally {
        await c.end().catch(() => undefined);
      }
    }
  });
  return { kind: "postgres", url: url.toString(), poolSize: 20 };
}

/** The dialects to run a suite against: SQLite always, PostgreSQL when configured. */
export const DIALECTS: ("sqlite" | "postgres")[] = PG_URL ? ["sqlite", "postgres"] : ["sqlite"];
