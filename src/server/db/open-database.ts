import { Kysely, PostgresDialect, SqliteDialect, sql } from "kysely";
import type { DatabaseConfig } from "../options.js";
import { loadPg, loadSqlite } from "./drivers.js";
import { MIGRATIONS } from "./migrations.js";
import type { Database } from "./schema.js";

export type { DatabaseConfig };

export interface Db {
  kysely: Kysely<Database>;
  dialect: "sqlite" | "postgres";
  close(): Promise<void>;
}

/**
 * Opens the database and brings its schema up to date. SQLite runs in WAL mode with
 * synchronous=FULL (an acknowledged write survives power loss, not just a crash) and a busy
 * timeout; PostgreSQL uses a pool. Migrations run under a lock so several instances can start at once.
 */
export async function openDatabase(config: DatabaseConfig): Promise<Db> {
  let kysely: Kysely<Database>;
  if (config.kind === "sqlite") {
    const SqliteDatabase = await loadSqlite();
    const raw = new SqliteDatabase(config.file);
    raw.pragma("journal_mode = WAL");
    raw.pragma("synchronous = FULL");
    raw.pragma("busy_timeout = 5000");
    raw.pragma("foreign_keys = ON");
    kysely = new Kysely<Database>({ dialect: new SqliteDialect({ database: raw }) });
  } else {
    const pg = await loadPg();
    const pool = new pg.Pool({
      connectionString: config.url,
      max: config.poolSize ?? 10,
      // int8 columns come back from node-postgres as strings; every value we store fits 2^53.
      // Set per pool, not with pg.types.setTypeParser, which would change it process-wide.
      types: {
        getTypeParser: ((oid: number, format?: "text" | "binary") =>
          oid === 20
            ? (v: string) => Number(v)
            : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
      },
    });
    kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  }
  const db: Db = { kysely, dialect: config.kind, close: () => kysely.destroy() };
  await migrate(db);
  return db;
}

async function migrate(db: Db): Promise<void> {
  await withTransaction(db, async (tx) => {
    if (db.dialect === "postgres") await sql`select pg_advisory_xact_lock(7411)`.execute(tx);
    await tx.schema
      .createTable("schema_migrations")
      .ifNotExists()
      .addColumn("version", "integer", (c) => c.primaryKey())
      .addColumn("name", "text", (c) => c.notNull())
      .addColumn("applied_at", "bigint", (c) => c.notNull())
      .execute();
    const done = new Set(
      (await tx.selectFrom("schema_migrations").select("version").execute()).map((r) => r.version),
    );
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      await m.up(tx, db.dialect);
      if (m.version === 1)
        await tx.insertInto("audit_head").values({ id: 1, seq: 0, hash: AUDIT_GENESIS }).execute();
      await tx
        .insertInto("schema_migrations")
        .values({ version: m.version, name: m.name, applied_at: Math.floor(Date.now() / 1000) })
        .execute();
    }
  });
}

/** The `prev_hash` of audit entry 1. */
export const AUDIT_GENESIS = "modelvault-audit-genesis-v1";

/**
 * Runs `fn` in one transaction. SQLite uses BEGIN IMMEDIATE: a deferred transaction that
 * later writes can fail with SQLITE_BUSY without waiting; taking the write lock up front makes
 * busy_timeout apply. PostgreSQL uses READ COMMITTED, where a conditional UPDATE re-checks its
 * WHERE against the newest row, which is what our limit counters rely on.
 */
export async function withTransaction<T>(db: Db, fn: (tx: Kysely<Database>) => Promise<T>): Promise<T> {
  if (db.dialect === "postgres") return db.kysely.transaction().execute(fn);
  return db.kysely.connection().execute(async (conn) => {
    await sql`begin immediate`.execute(conn);
    try {
      const result = await fn(conn);
      await sql`commit`.execute(conn);
      return result;
    } catch (e) {
      await sql`rollback`.execute(conn);
      throw e;
    }
  });
}
