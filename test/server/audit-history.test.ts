import { join } from "node:path";
import { type JSONWebKeySet, SignJWT } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { TYP } from "../../src/core/token-types.js";
import { type AuditEntry, auditEntryHash } from "../../src/server/audit/audit-chain.js";
import { appendAudit } from "../../src/server/audit/audit-log.js";
import { verifyAuditLog } from "../../src/server/audit/verify-audit.js";
import { AUDIT_GENESIS, type Db, openDatabase } from "../../src/server/db/open-database.js";
import { loadServerKeys, publicJwks, type ServerKeys } from "../../src/server/keys/server-keys.js";
import { tempDir } from "../fixtures.js";
import { DIALECTS, freshPostgres } from "./databases.js";

/** A valid chain of `n` entries. */
function chain(n: number): AuditEntry[] {
  const entries: AuditEntry[] = [];
  let prev = AUDIT_GENESIS;
  for (let seq = 1; seq <= n; seq++) {
    const e = {
      seq,
      at: 1000 + seq,
      actor: "a",
      action: "x",
      outcome: "success",
      subject: "-",
      detail: "{}",
      prev_hash: prev,
    };
    prev = auditEntryHash(e);
    entries.push({ ...e, hash: prev });
  }
  return entries;
}

describe("audit verify accepts any history concurrent writers produce, and nothing else", () => {
  let keys: ServerKeys;
  let jwks: JSONWebKeySet;
  beforeAll(async () => {
    keys = await loadServerKeys({ dir: await tempDir("mv-audit-") });
    jwks = publicJwks(keys);
  });
  const entries = chain(20);
  const checkpoint = (size: number, at: number, head = entries[size - 1]?.hash as string) =>
    new SignJWT({ size, head, at })
      .setProtectedHeader({ alg: "ES256", typ: TYP.checkpoint, kid: keys.current.kid })
      .setIssuer("http://x")
      .setIssuedAt(at)
      .sign(keys.current.privateKey);

  it("two writers' checkpoints with one timestamp, or times against sizes (clock skew), in any order", async () => {
    const tokens = [await checkpoint(17, 5000), await checkpoint(20, 5000), await checkpoint(12, 6000)];
    await expect(verifyAuditLog(entries, tokens, jwks)).resolves.toMatchObject({
      entries: 20,
      checkpoints: 3,
      latestCheckpoint: 20,
    });
    // The same checkpoint kept elsewhere and stored: no conflict.
    await expect(verifyAuditLog(entries, [...tokens, tokens[0] as string], jwks)).resolves.toBeTruthy();
  });

  it("streams entries from an async source", async () => {
    async function* stream() {
      yield* entries;
    }
    await expect(verifyAuditLog(stream(), [await checkpoint(20, 1)], jwks)).resolves.toMatchObject({
      entries: 20,
    });
  });

  it("still refuses equivocation, truncation and rewriting", async () => {
    const other = chain(20).map((e) => e.hash);
    await expect(
      verifyAuditLog(entries, [await checkpoint(10, 1), await checkpoint(10, 2, other[3])], jwks),
    ).rejects.toMatchObject({
      code: "ERR_AUDIT_CHECKPOINT_INVALID",
      message: expect.stringContaining("equivocation"),
    });
    await expect(verifyAuditLog(entries.slice(0, 15), [await checkpoint(20, 1)], jwks)).rejects.toMatchObject(
      {
        message: expect.stringContaining("truncated"),
      },
    );
    await expect(
      verifyAuditLog(entries, [await checkpoint(10, 1, "f".repeat(64))], jwks),
    ).rejects.toMatchObject({
      message: expect.stringContaining("entry 10 differs from its checkpoint: rewritten"),
    });
  });
  it("a log that goes backwards (restored from a backup, then grown again) fails against a checkpoint kept before", async () => {
    // The operator restores a backup of 12 entries and the server carries on appending: the log
    // is a valid chain again, as long as before, and verifies on its own.
    const regrown = [...entries.slice(0, 12)];
    for (let seq = 13; seq <= 20; seq++) {
      const prev = regrown[seq - 2] as AuditEntry;
      const e = { ...(entries[seq - 1] as AuditEntry), action: "after-restore", prev_hash: prev.hash };
      regrown.push({ ...e, hash: auditEntryHash(e) });
    }
    await expect(verifyAuditLog(regrown, [], jwks)).resolves.toMatchObject({ entries: 20 });
    await expect(verifyAuditLog(regrown, [await checkpoint(12, 1)], jwks)).resolves.toBeTruthy();
    // A checkpoint exported before the restore vouches for entries the log no longer has.
    for (const size of [13, 17, 20])
      await expect(verifyAuditLog(regrown, [await checkpoint(size, 1)], jwks)).rejects.toMatchObject({
        code: "ERR_AUDIT_CHECKPOINT_INVALID",
        message: expect.stringContaining(`entry ${size} differs from its checkpoint`),
      });
    // And a log shorter than a kept checkpoint (restored, not yet regrown) is truncated.
    await expect(verifyAuditLog(entries.slice(0, 12), [await checkpoint(17, 1)], jwks)).rejects.toMatchObject(
      {
        message: expect.stringContaining("truncated"),
      },
    );
  });
});

describe.each(DIALECTS)("audit appends inside transactions (%s)", (dialect) => {
  const open = async () =>
    openDatabase(
      dialect === "postgres"
        ? await freshPostgres()
        : { kind: "sqlite", file: join(await tempDir("mv-audit-"), "db.sqlite") },
    );
  const event = { actor: "t", action: "test", outcome: "success" as const, subject: "-" };
  const head = async (db: Db) =>
    (await db.kysely.selectFrom("audit_head").select(["seq", "hash"]).executeTakeFirstOrThrow()).seq;

  it("roll back with their transaction, and commit with it, in order", async () => {
    const db = await open();
    await expect(
      db.transaction(async (tx) => {
        await appendAudit(tx, event, 1);
        throw new Error("the action failed");
      }),
    ).rejects.toThrow("the action failed");
    expect(await head(db)).toBe(0);
    await db.transaction(async (tx) => {
      for (let i = 0; i < 3; i++) await appendAudit(tx, { ...event, subject: `s${i}` }, 1);
    });
    const rows = await db.kysely.selectFrom("audit_log").select(["seq", "subject"]).orderBy("seq").execute();
    expect(rows).toEqual([
      { seq: 1, subject: "s0" },
      { seq: 2, subject: "s1" },
      { seq: 3, subject: "s2" },
    ]);
    await db.close();
  });

  it.skipIf(dialect === "sqlite")(
    "hold the audit head only while committing: an open transaction never blocks another's",
    async () => {
      const db = await open();
      let release = () => {};
      const held = new Promise<void>((r) => {
        release = r;
      });
      const slow = db.transaction(async (tx) => {
        await appendAudit(tx, { ...event, subject: "slow" }, 1);
        await held; // still open, its entry queued
      });
      const quick = db.transaction((tx) => appendAudit(tx, { ...event, subject: "quick" }, 1));
      const finished = await Promise.race([
        quick.then(() => true),
        new Promise((r) => setTimeout(() => r(false), 3000)),
      ]);
      release();
      await slow;
      expect(finished).toBe(true);
      const rows = await db.kysely.selectFrom("audit_log").select("subject").orderBy("seq").execute();
      expect(rows.map((r) => r.subject)).toEqual(["quick", "slow"]);
      const jwks = { keys: [] };
      await expect(
        verifyAuditLog(
          await db.kysely.selectFrom("audit_log").selectAll().orderBy("seq").execute(),
          [],
          jwks,
        ),
      ).resolves.toMatchObject({ entries: 2 });
      await db.close();
    },
  );
});
