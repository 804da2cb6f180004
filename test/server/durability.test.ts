import { join } from "node:path";
import { sql } from "kysely";
import { describe, expect, it } from "vitest";
import { openDatabase } from "../../src/server/db/open-database.js";
import { tempDir } from "../fixtures.js";

/**
 * SQLite in WAL mode with synchronous=NORMAL survives a crashed process but may lose its last
 * commits on power loss; FULL loses no acknowledged write (checklist K2). better-sqlite3's own
 * default in WAL mode is NORMAL, so the setting must be explicit.
 */
describe("SQLite durability mode", () => {
  it("is WAL with synchronous=FULL on every connection the server opens", async () => {
    const db = await openDatabase({ kind: "sqlite", file: join(await tempDir("mv-durable-"), "db.sqlite") });
    try {
      const mode = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(db.kysely);
      const sync = await sql<{ synchronous: number }>`pragma synchronous`.execute(db.kysely);
      expect(mode.rows[0]?.journal_mode).toBe("wal");
      expect(sync.rows[0]?.synchronous).toBe(2); // 2 = FULL (1 = NORMAL)
    } finally {
      await db.close();
    }
  });
});
