import { type JSONWebKeySet, SignJWT } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { AUDIT_GENESIS as CONSOLE_GENESIS, verifyAuditChain } from "../../console/src/audit-verify.js";
import type { AuditEntry } from "../../console/src/types.js";
import { TYP } from "../../src/core/token-types.js";
import { auditEntryHash } from "../../src/server/audit/audit-chain.js";
import { AUDIT_GENESIS } from "../../src/server/db/open-database.js";
import { loadServerKeys, publicJwks, type ServerKeys } from "../../src/server/keys/server-keys.js";
import { tempDir } from "../fixtures.js";

/** A chain of `n` entries as the server writes them (its own hash function). */
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
      detail: `{"n":${seq}}`,
      prev_hash: prev,
    };
    prev = auditEntryHash(e);
    entries.push({ ...e, hash: prev });
  }
  return entries;
}

/** The console's verifier reading `entries` a page (of 7) at a time, as it reads /v1/audit. */
const verify = (entries: AuditEntry[], tokens: string[], jwks: JSONWebKeySet) =>
  verifyAuditChain(
    async (after) => entries.filter((e) => e.seq > after).slice(0, 7),
    tokens,
    jwks,
    () => {},
  );

describe("the console's in-browser audit verification agrees with the server's chain", () => {
  let keys: ServerKeys;
  let jwks: JSONWebKeySet;
  const entries = chain(20);
  const checkpoint = (size: number, head = entries[size - 1]?.hash as string) =>
    new SignJWT({ size, head, at: 5000 + size })
      .setProtectedHeader({ alg: "ES256", typ: TYP.checkpoint, kid: keys.current.kid })
      .setIssuer("http://x")
      .setIssuedAt(5000)
      .sign(keys.current.privateKey);

  beforeAll(async () => {
    keys = await loadServerKeys({ dir: await tempDir("mv-console-audit-") });
    jwks = publicJwks(keys);
  });

  it("uses the server's genesis and accepts its chain with its checkpoints", async () => {
    expect(CONSOLE_GENESIS).toBe(AUDIT_GENESIS);
    await expect(verify(entries, [await checkpoint(7), await checkpoint(20)], jwks)).resolves.toEqual({
      ok: true,
      entries: 20,
      checkpoints: 2,
      latestCheckpoint: 20,
    });
  });

  it("refuses a rewritten entry, a rewritten and re-hashed tail, truncation and a forged checkpoint", async () => {
    const edited = entries.map((e) => (e.seq === 5 ? { ...e, detail: '{"n":0}' } : e));
    expect((await verify(edited, [], jwks)).problem).toMatch(/entry 5 does not match/);
    // Rewritten from entry 10 on with valid hashes: only the checkpoint at 12 shows it.
    const tail = chain(20).map((e, i) => (i >= 9 ? { ...e, actor: "b" } : e));
    let prev = tail[8]?.hash as string;
    for (const e of tail.slice(9)) {
      e.prev_hash = prev;
      e.hash = auditEntryHash(e);
      prev = e.hash;
    }
    expect((await verify(tail, [await checkpoint(12)], jwks)).problem).toMatch(
      /entry 12 differs from its checkpoint/,
    );
    expect((await verify(entries.slice(0, 15), [await checkpoint(20)], jwks)).problem).toMatch(/truncated/);
    const other = await loadServerKeys({ dir: await tempDir("mv-console-audit-") });
    const forged = await new SignJWT({ size: 20, head: entries[19]?.hash, at: 1 })
      .setProtectedHeader({ alg: "ES256", typ: TYP.checkpoint, kid: keys.current.kid })
      .sign(other.current.privateKey);
    expect((await verify(entries, [forged], jwks)).problem).toMatch(/checkpoint does not verify/);
  });
});
