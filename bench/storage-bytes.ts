/** Bytes each stored row takes, with its indexes, for the tables that grow with devices (compacted). */
import { sql } from "kysely";
import { type DatabaseConfig, openDatabase } from "../src/server/db/open-database.js";

const TABLES = ["usage_reports", "audit_log", "licenses", "dpop_replay", "devices"] as const;

export async function storageBytes(config: DatabaseConfig): Promise<Record<string, number>> {
  const db = await openDatabase(config);
  try {
    const out: Record<string, number> = {};
    for (const table of TABLES) {
      const rows = Number(
        (
          await db.kysely
            .selectFrom(table)
            .select((eb) => eb.fn.countAll<number>().as("n"))
            .executeTakeFirstOrThrow()
        ).n,
      );
      if (rows === 0) continue;
      let bytes: number;
      if (db.dialect === "postgres") {
        // Compacted: updated rows (licenses, devices) leave dead versions that autovacuum reuses.
        await sql`vacuum full ${sql.table(table)}`.execute(db.kysely);
        const r = await sql<{ b: string }>`select pg_total_relation_size(${table}) as b`.execute(db.kysely);
        bytes = Number(r.rows[0]?.b);
      } else {
        // SQLite's dbstat: pages of the table and of every index on it.
        const r = await sql<{ b: number }>`
          select sum(pgsize) as b from dbstat
          where name = ${table} or name in (select name from sqlite_schema where type = 'index' and tbl_name = ${table})`.execute(
          db.kysely,
        );
        bytes = Number(r.rows[0]?.b);
      }
      out[table] = bytes / rows;
    }
    return out;
  } finally {
    await db.close();
  }
}
