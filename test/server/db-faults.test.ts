import pg from "pg";
import { describe, expect, it } from "vitest";
import { classifyDbError } from "../../src/server/db/db-errors.js";
import { DbHealth } from "../../src/server/db/db-health.js";
import { openDatabase } from "../../src/server/db/open-database.js";
import { freshPostgres, PG_URL } from "./databases.js";

describe("database faults", () => {
  it("tell an unavailable, a full and a busy database apart from errors the request caused", () => {
    const cases: [unknown, string | undefined][] = [
      [
        Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" }),
        "unavailable",
      ],
      [{ code: "57P01", message: "terminating connection due to administrator command" }, "unavailable"],
      [{ code: "57P03", message: "the database system is starting up" }, "unavailable"],
      [{ code: "08006", message: "connection failure" }, "unavailable"],
      [new Error("Connection terminated unexpectedly"), "unavailable"],
      [new Error("timeout exceeded when trying to connect"), "unavailable"],
      [{ code: "SQLITE_IOERR_WRITE", message: "disk I/O error" }, "unavailable"],
      [{ code: "SQLITE_FULL", message: "database or disk is full" }, "full"],
      [{ code: "53100", message: "could not extend file: No space left on device" }, "full"],
      [{ code: "SQLITE_BUSY", message: "database is locked" }, "busy"],
      [{ code: "40001", message: "could not serialize access" }, "busy"],
      [{ code: "23505", message: "duplicate key value violates unique constraint" }, undefined],
      [{ code: "SQLITE_CONSTRAINT_PRIMARYKEY", message: "UNIQUE constraint failed" }, undefined],
      [new TypeError("x is undefined"), undefined],
      [undefined, undefined],
    ];
    for (const [error, fault] of cases) expect(classifyDbError(error), JSON.stringify(error)).toBe(fault);
  });

  it("log an outage once and its end once; a full disk ends only with a successful write", () => {
    const lines: string[] = [];
    let t = 0;
    const health = new DbHealth(
      (_, msg) => lines.push(msg),
      () => t,
    );
    for (let i = 0; i < 5; i++) health.failed({ code: "ECONNREFUSED" });
    expect(health.state).toBe("unavailable");
    t = 4000;
    health.succeeded(false);
    health.succeeded(false);
    expect(lines).toEqual([
      "database unavailable; answering 503 until it is back",
      "database available again",
    ]);
    health.failed({ code: "SQLITE_FULL" });
    health.succeeded(false); // a read: the disk is still full
    expect(health.state).toBe("full");
    health.succeeded(true);
    expect(health.state).toBe("ok");
    expect(lines.slice(2)).toEqual([
      "database storage full; writes answer 507, reads continue",
      "database storage writable again",
    ]);
  });

  it.skipIf(!PG_URL)("parse int8 per pool, leaving node-postgres's global type parsers alone", async () => {
    const db = await openDatabase(await freshPostgres());
    const row = await db.kysely.selectFrom("audit_head").select("seq").executeTakeFirstOrThrow();
    expect(row.seq).toBe(0);
    expect(pg.types.getTypeParser(20, "text")("42")).toBe("42");
    await db.close();
  });
});
