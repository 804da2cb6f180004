import { join } from "node:path";
import SqliteDatabase from "better-sqlite3";
import { Kysely, PostgresDialect, SqliteDialect } from "kysely";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { allMigrations } from "../../src/server/db/all-migrations.js";
import { MIGRATIONS } from "../../src/server/db/migrations.js";
import { openDatabase } from "../../src/server/db/open-database.js";
import type { Database } from "../../src/server/db/schema.js";
import { tempDir } from "../fixtures.js";
import { DIALECTS, freshPostgres } from "./databases.js";

describe.each(DIALECTS)("migrations after version 1, on a database made by version 1 (%s)", (dialect) => {
  it("backfills model ownership from first registrations and the settle deadline of existing licenses", async () => {
    const config =
      dialect === "postgres"
        ? await freshPostgres()
        : { kind: "sqlite" as const, file: join(await tempDir("mv-migrate-"), "v1.sqlite") };
    const old = new Kysely<Database>({
      dialect:
        config.kind === "postgres"
          ? new PostgresDialect({ pool: new pg.Pool({ connectionString: config.url }) })
          : new SqliteDialect({ database: new SqliteDatabase(config.file) }),
    });
    await old.schema
      .createTable("schema_migrations")
      .addColumn("version", "integer", (c) => c.primaryKey())
      .addColumn("name", "text", (c) => c.notNull())
      .addColumn("applied_at", "bigint", (c) => c.notNull())
      .execute();
    await MIGRATIONS[0]?.up(old, config.kind);
    await old
      .insertInto("schema_migrations")
      .values({ version: 1, name: "initial schema", applied_at: 1 })
      .execute();
    await old
      .insertInto("audit_head")
      .values({ id: 1, seq: 0, hash: "modelvault-audit-genesis-v1" })
      .execute();
    const model = (id: string, version: number, by: string, at: number) => ({
      id,
      version,
      manifest_digest: "d",
      manifest_jws: "j",
      content_key_id: "k",
      wrapped_cek: "w",
      kek_id: "kek",
      registered_by: by,
      registered_at: at,
    });
    await old
      .insertInto("models")
      .values([model("m", 2, "p_late", 20), model("m", 1, "p_first", 10), model("n", 1, "p_other", 5)])
      .execute();
    const license = (jti: string, offline: number | null) => ({
      jti,
      entitlement_id: "e",
      principal_id: "p",
      device_id: "d",
      model_id: "m",
      model_version: 1,
      issued_at: 100,
      expires_at: 700,
      offline_until: offline,
      period_start: 0,
      allowance: 10,
      used: 0,
      last_report_at: null,
      released_at: null,
      revoked_at: null,
    });
    await old
      .insertInto("licenses")
      .values([license("a", 4300), license("b", null)] as never)
      .execute();
    await old.destroy();

    const db = await openDatabase(config);
    try {
      const owners = await db.kysely.selectFrom("model_owners").selectAll().orderBy("model_id").execute();
      expect(owners.map((o) => [o.model_id, o.principal_id])).toEqual([
        ["m", "p_first"],
        ["n", "p_other"],
      ]);
      const licenses = await db.kysely
        .selectFrom("licenses")
        .select(["jti", "usable_until"])
        .orderBy("jti")
        .execute();
      expect(licenses).toEqual([
        { jti: "a", usable_until: 4300 },
        { jti: "b", usable_until: 700 },
      ]);
      const versions = await db.kysely
        .selectFrom("schema_migrations")
        .select("version")
        .orderBy("version")
        .execute();
      expect(versions.map((v) => v.version)).toEqual(allMigrations().map((m) => m.version));
    } finally {
      await db.close();
    }
  });
});
