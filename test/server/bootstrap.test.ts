import { stat } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { bootstrapAdmin } from "../../src/server/bootstrap.js";
import { createServerContext } from "../../src/server/start-server.js";
import { tempDir } from "../fixtures.js";
import { DIALECTS, freshPostgres } from "./databases.js";

describe.each(DIALECTS)("bootstrap admin (%s)", (dialect) => {
  it("is created exactly once, however many callers race on an empty database", async () => {
    const dir = await tempDir("mv-boot-");
    const ctx = await createServerContext({
      dataDir: dir,
      log: () => {},
      ...(dialect === "postgres" ? { database: await freshPostgres() } : {}),
    });
    const shown: string[] = [];
    const results = await Promise.all(
      Array.from({ length: 10 }, () => bootstrapAdmin(ctx, { show: (t) => shown.push(t) })),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(shown).toEqual([results.find(Boolean)?.token]);
    const principals = await ctx.db.kysely.selectFrom("principals").selectAll().execute();
    expect(principals).toHaveLength(1);
    const keys = await ctx.db.kysely.selectFrom("api_keys").selectAll().execute();
    expect(keys).toHaveLength(1);
    expect(await bootstrapAdmin(ctx)).toBeUndefined();
    await ctx.db.close();
  });

  it("is not created on a database that already has principals (one from before the claim row)", async () => {
    const dir = await tempDir("mv-boot-");
    const ctx = await createServerContext({
      dataDir: dir,
      log: () => {},
      ...(dialect === "postgres" ? { database: await freshPostgres() } : {}),
    });
    await ctx.db.kysely
      .insertInto("principals")
      .values({
        id: "p_old",
        name: "old",
        oidc_issuer: null,
        oidc_subject: null,
        created_at: 1,
        disabled_at: null,
      })
      .execute();
    expect(await bootstrapAdmin(ctx)).toBeUndefined();
    await ctx.db.close();
  });
});

describe("files on first start", () => {
  it("makes the data directory 0700 (also when it existed) and the SQLite files 0600", async () => {
    const dir = await tempDir("mv-perm-");
    const { chmod } = await import("node:fs/promises");
    await chmod(dir, 0o755);
    const ctx = await createServerContext({ dataDir: dir, log: () => {} });
    await bootstrapAdmin(ctx);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    for (const f of ["modelvault.sqlite", "modelvault.sqlite-wal", "modelvault.sqlite-shm"])
      expect((await stat(join(dir, f))).mode & 0o777, f).toBe(0o600);
    expect((await stat(join(dir, "keys"))).mode & 0o777).toBe(0o700);
    await ctx.db.close();
  });
});
