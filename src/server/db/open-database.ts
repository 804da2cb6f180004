import { chmod, open as openFile } from "node:fs/promises";
import { Kysely, type LogEvent, PostgresDialect, SqliteDialect, sql } from "kysely";
import { allMigrations } from "./all-migrations.js";
import { DbHealth, type DbLog } from "./db-health.js";
import { loadPg, loadSqlite } from "./drivers.js";
import type { Database } from "./schema.js";

export type DatabaseConfig =
  | { kind: "sqlite"; file: string }
  | { kind: "postgres"; url: string; poolSize?: number };

export interface OpenOptions {
  /** Where connection faults and recoveries are reported (default: nowhere). */
  log?: DbLog;
  /** Open for reading only and skip migrations (`audit verify`); PostgreSQL sessions are read-only too. */
  readOnly?: boolean;
}

export interface Db {
  kysely: Kysely<Database>;
  dialect: "sqlite" | "postgres";
  /** Reachable and writable, as the last queries found it; logs each change once. */
  health: DbHealth;
  /** Runs `fn` in one transaction; see withTransaction. */
  transaction<T>(fn: (tx: Kysely<Database>) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

const INT8_OID = 20;
const BEFORE_COMMIT = Symbol("modelvault.beforeCommit");
type Hooks = Map<string, { items: unknown[]; run(items: unknown[]): Promise<void> }>;
type HookedTx = Kysely<Database> & { [BEFORE_COMMIT]?: Hooks };

/**
 * Queues `item` for `run`, which is called once per transaction, inside it, just before it
 * commits, with everything queued under `name`. Returns false when `tx` did not come from
 * Db.transaction: the caller then does its work at once. Work that takes a contended lock (the
 * audit head) is done last this way, so the lock is held for the commit only.
 */
export function queueBeforeCommit<T>(
  tx: Kysely<Database>,
  name: string,
  item: T,
  run: (items: T[]) => Promise<void>,
): boolean {
  const hooks = (tx as HookedTx)[BEFORE_COMMIT];
  if (!hooks) return false;
  let hook = hooks.get(name);
  if (!hook) {
    hook = { items: [], run: run as (items: unknown[]) => Promise<void> };
    hooks.set(name, hook);
  }
  hook.items.push(item);
  return true;
}

/** Runs `fn` with hooks, then the work it queued (queueBeforeCommit), all before the caller commits. */
async function withHooks<T>(tx: Kysely<Database>, fn: (tx: Kysely<Database>) => Promise<T>): Promise<T> {
  const hooks: Hooks = new Map();
  (tx as HookedTx)[BEFORE_COMMIT] = hooks;
  const result = await fn(tx);
  for (const hook of hooks.values()) await hook.run(hook.items);
  return result;
}
const WRITE = /^\s*(insert|update|delete|commit)\b/i;

/**
 * Opens the database and brings its schema up to date. SQLite runs in WAL mode with
 * synchronous=FULL (an acknowledged write survives power loss, not just a crash) and a busy
 * timeout, in a file created 0600. PostgreSQL uses a pool that outlives the server restarting:
 * a dead connection is dropped and the next query opens a new one. Migrations run under a lock
 * so several instances can start at once.
 */
export async function openDatabase(config: DatabaseConfig, options: OpenOptions = {}): Promise<Db> {
  const health = new DbHealth(options.log ?? (() => {}));
  // Kysely reports every query here: successes end an outage, failures may start one.
  const log = (event: LogEvent) => {
    if (event.level === "query") health.succeeded(WRITE.test(event.query.sql));
    else health.failed(event.error);
  };
  const db =
    config.kind === "sqlite"
      ? await openSqlite(config.file, options, health, log)
      : await openPostgres(config, options, health, log);
  if (!options.readOnly) await migrate(db);
  return db;
}

async function openSqlite(
  file: string,
  options: OpenOptions,
  health: DbHealth,
  log: (event: LogEvent) => void,
): Promise<Db> {
  if (!options.readOnly) {
    // SQLite creates its file with the process umask, and its -wal and -shm files with the
    // main file's mode: creating the file 0600 first keeps all three private.
    await (await openFile(file, "a", 0o600)).close();
    await chmod(file, 0o600);
  }
  const SqliteDatabase = await loadSqlite();
  const raw = new SqliteDatabase(file, options.readOnly ? { readonly: true, fileMustExist: true } : {});
  if (!options.readOnly) {
    raw.pragma("journal_mode = WAL");
    raw.pragma("synchronous = FULL");
  }
  raw.pragma("busy_timeout = 5000");
  raw.pragma("foreign_keys = ON");
  const kysely = new Kysely<Database>({ dialect: new SqliteDialect({ database: raw }), log });
  return {
    kysely,
    dialect: "sqlite",
    health,
    // BEGIN IMMEDIATE: a deferred transaction that later writes can fail with SQLITE_BUSY
    // without waiting; taking the write lock up front makes busy_timeout apply.
    transaction: (fn) =>
      kysely.connection().execute(async (conn) => {
        await sql`begin immediate`.execute(conn);
        try {
          const result = await withHooks(conn, fn);
          await sql`commit`.execute(conn);
          return result;
        } catch (e) {
          try {
            await sql`rollback`.execute(conn);
          } catch (rollbackError) {
            // SQLite rolls back by itself after SQLITE_FULL, IOERR, BUSY or NOMEM, and ROLLBACK
            // then fails with "no transaction is active": keep the error that matters.
            if (raw.inTransaction) throw rollbackError;
          }
          throw e;
        }
      }),
    close: () => kysely.destroy(),
  };
}

async function openPostgres(
  config: { url: string; poolSize?: number },
  options: OpenOptions,
  health: DbHealth,
  log: (event: LogEvent) => void,
): Promise<Db> {
  const pg = await loadPg();
  const pool = new pg.Pool({
    connectionString: config.url,
    max: config.poolSize ?? 10,
    // Fail a request in seconds, not never, while the server is unreachable.
    connectionTimeoutMillis: 5000,
    keepAlive: true,
    // int8 columns come back as strings by default; every value we store fits 2^53. Set per
    // pool, not with pg.types.setTypeParser, which would change every pool in the process.
    types: {
      getTypeParser: ((oid: number, format?: "text" | "binary") =>
        oid === INT8_OID && format !== "binary"
          ? (v: string) => Number(v)
          : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    },
    ...(options.readOnly ? { options: "-c default_transaction_read_only=on" } : {}),
  });
  // An idle connection that PostgreSQL closes (restart, pg_terminate_backend) is emitted here;
  // without a listener Node would exit on it. pg-pool has already dropped it.
  pool.on("error", (e) => health.failed(e));
  // A connection checked out but between queries (inside a transaction) emits on the client
  // itself; its next query fails and the pool drops it on release.
  pool.on("connect", (client) => client.on("error", (e) => health.failed(e)));
  const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }), log });
  return {
    kysely,
    dialect: "postgres",
    health,
    // READ COMMITTED, where a conditional UPDATE re-checks its WHERE against the newest row,
    // which is what our limit counters rely on.
    transaction: (fn) => kysely.transaction().execute((tx) => withHooks(tx, fn)),
    close: () => kysely.destroy(),
  };
}

async function migrate(db: Db): Promise<void> {
  await db.transaction(async (tx) => {
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
    for (const m of allMigrations()) {
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

/** Runs `fn` in one transaction: BEGIN IMMEDIATE on SQLite, READ COMMITTED on PostgreSQL. */
export function withTransaction<T>(db: Db, fn: (tx: Kysely<Database>) => Promise<T>): Promise<T> {
  return db.transaction(fn);
}
