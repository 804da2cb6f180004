import { copyFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import SqliteDatabase from "better-sqlite3";
import { beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../cli/run-cli.js";
import { type Harness, startHarness } from "./harness.js";

let h: Harness;
let dbFile: string;
let jwksFile: string;
let exported: string;
let copies = 0;

beforeAll(async () => {
  h = await startHarness();
  for (let i = 0; i < 8; i++)
    await h.call("POST", "/v1/admin/principals", h.admin, { name: `p${i}`, roles: ["client"] });
  expect((await h.call("POST", "/v1/audit/checkpoints", h.admin)).status).toBe(201);
  for (let i = 0; i < 3; i++) await h.call("POST", "/v1/admin/principals", h.admin, { name: `late${i}` });
  jwksFile = join(h.dir, "jwks.json");
  await writeFile(jwksFile, JSON.stringify((await h.call("GET", "/.well-known/jwks.json")).body));
  await h.server.close();
  dbFile = join(h.dir, "modelvault.sqlite");
  // The checkpoints an auditor kept elsewhere.
  const sqlite = new SqliteDatabase(dbFile, { readonly: true });
  exported = join(h.dir, "kept-checkpoints.json");
  await writeFile(
    exported,
    JSON.stringify(
      (sqlite.prepare("select token from audit_checkpoints").all() as { token: string }[]).map(
        (r) => r.token,
      ),
    ),
  );
  sqlite.close();
});

async function tampered(sqlText: string[]): Promise<string> {
  const file = join(h.dir, `copy-${copies++}.sqlite`);
  await copyFile(dbFile, file);
  const sqlite = new SqliteDatabase(file);
  for (const s of sqlText) sqlite.exec(s);
  sqlite.close();
  return file;
}
const verify = (file: string, extra: string[] = []) =>
  runCli(["audit", "verify", "--db", file, "--jwks", jwksFile, ...extra]);

describe("modelvault audit verify", () => {
  it("an untouched log verifies, with its checkpoint", async () => {
    const r = await verify(dbFile);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ok: 13 entries chain correctly; 2 checkpoints verify \(latest covers 13\)/);
  });

  it("an edited row fails, naming it", async () => {
    const r = await verify(await tampered([`update audit_log set actor = 'mallory' where seq = 5`]));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("ERR_AUDIT_CHAIN_BROKEN: audit entry 5 ");
  });

  it("a deleted row fails, naming it", async () => {
    const r = await verify(await tampered([`delete from audit_log where seq = 4`]));
    expect(r.stderr).toContain("ERR_AUDIT_CHAIN_BROKEN: audit entry 4 is missing");
  });

  it("two rows swapped (reordered) fail at the first", async () => {
    const r = await verify(
      await tampered([
        "update audit_log set seq = -1 where seq = 6",
        "update audit_log set seq = 6 where seq = 7",
        "update audit_log set seq = 7 where seq = -1",
      ]),
    );
    expect(r.stderr).toContain("ERR_AUDIT_CHAIN_BROKEN: audit entry 6 ");
  });

  it("a truncated tail passes the chain but fails against a kept checkpoint", async () => {
    const file = await tampered(["delete from audit_log where seq > 3", "delete from audit_checkpoints"]);
    const alone = await verify(file);
    expect(alone.code).toBe(0); // without an external checkpoint, truncation is invisible: keep checkpoints elsewhere
    const withKept = await verify(file, ["--checkpoints", exported]);
    expect(withKept.code).toBe(1);
    expect(withKept.stderr).toContain("ERR_AUDIT_CHECKPOINT_INVALID");
    expect(withKept.stderr).toContain("truncated");
  });

  it("a wholly recomputed chain fails against a kept checkpoint", async () => {
    const { auditEntryHash } = await import("../../src/server/audit/audit-chain.js");
    const file = await tampered([]);
    const sqlite = new SqliteDatabase(file);
    const rows = sqlite.prepare("select * from audit_log order by seq").all() as Record<string, unknown>[];
    let prev = "modelvault-audit-genesis-v1";
    for (const row of rows) {
      const changed = { ...row, actor: row.seq === 2 ? "mallory" : row.actor, prev_hash: prev } as never;
      const hash = auditEntryHash(changed);
      sqlite
        .prepare("update audit_log set actor = ?, prev_hash = ?, hash = ? where seq = ?")
        .run((changed as { actor: string }).actor, prev, hash, row.seq);
      prev = hash;
    }
    sqlite.exec("delete from audit_checkpoints");
    sqlite.close();
    expect((await verify(file)).code).toBe(0);
    const r = await verify(file, ["--checkpoints", exported]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("rewritten");
  });

  it("a forged checkpoint is refused", async () => {
    const file = await tampered(["update audit_checkpoints set token = token || 'x'"]);
    expect((await verify(file)).stderr).toContain("ERR_AUDIT_CHECKPOINT_INVALID");
  });
});
