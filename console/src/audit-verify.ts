/**
 * Verifies the audit log in the browser with Web Crypto, as `modelvault audit verify` does
 * offline: every checkpoint's signature under the server's published keys, then every entry's
 * sequence and hash chain, and that each checkpointed entry is there with the hash vouched for.
 */
import { compactVerify, createLocalJWKSet, decodeProtectedHeader, type JSONWebKeySet } from "jose";
import { canonicalJson } from "../../src/core/canonical-json.js";
import { checkJoseHeader } from "../../src/core/jose-header.js";
import { TYP } from "../../src/core/token-types.js";
import type { AuditEntry } from "./types.js";

/** `prev_hash` of entry 1 (src/server/db/open-database.ts; test/console/audit-verify.test.ts keeps the two equal). */
export const AUDIT_GENESIS = "modelvault-audit-genesis-v1";

const hex = (b: ArrayBuffer) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, "0")).join("");

/** hash(n) = SHA-256(prev_hash || "\n" || canonical JSON of the entry's fields), hex. */
export async function auditEntryHash(e: Omit<AuditEntry, "hash">): Promise<string> {
  const body = canonicalJson({
    seq: e.seq,
    at: e.at,
    actor: e.actor,
    action: e.action,
    outcome: e.outcome,
    subject: e.subject,
    detail: e.detail,
  });
  return hex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`${e.prev_hash}\n${body}`)));
}

/** A checkpoint's claims, once its signature verified under the JWKS. */
export async function verifyCheckpoint(
  token: string,
  jwks: JSONWebKeySet,
): Promise<{ size: number; head: string; at: number }> {
  const problem = checkJoseHeader(decodeProtectedHeader(token), { alg: "ES256", typ: TYP.checkpoint });
  if (problem) throw new Error(`checkpoint header: ${problem.message}`);
  const { payload } = await compactVerify(token, createLocalJWKSet(jwks), { algorithms: ["ES256"] });
  const c = JSON.parse(new TextDecoder().decode(payload)) as { size: number; head: string; at: number };
  if (!Number.isSafeInteger(c.size) || typeof c.head !== "string")
    throw new Error("checkpoint claims are malformed");
  return c;
}

export interface VerifyResult {
  ok: boolean;
  entries: number;
  checkpoints: number;
  latestCheckpoint?: number;
  problem?: string;
}

/** Walks the whole log a page at a time (`page(after)` answers entries with seq > after, in order). */
export async function verifyAuditChain(
  page: (after: number) => Promise<AuditEntry[]>,
  tokens: readonly string[],
  jwks: JSONWebKeySet,
  progress: (entries: number) => void,
): Promise<VerifyResult> {
  const heads = new Map<number, string>();
  for (const token of tokens) {
    try {
      const cp = await verifyCheckpoint(token, jwks);
      const other = heads.get(cp.size);
      if (other !== undefined && other !== cp.head)
        return {
          ok: false,
          entries: 0,
          checkpoints: tokens.length,
          problem: `two checkpoints of size ${cp.size} disagree`,
        };
      heads.set(cp.size, cp.head);
    } catch (e) {
      return {
        ok: false,
        entries: 0,
        checkpoints: tokens.length,
        problem: `a checkpoint does not verify: ${(e as Error).message}`,
      };
    }
  }
  let prev = AUDIT_GENESIS;
  let count = 0;
  for (;;) {
    const entries = await page(count);
    for (const e of entries) {
      const fail = (problem: string): VerifyResult => ({
        ok: false,
        entries: count,
        checkpoints: tokens.length,
        problem,
      });
      if (e.seq !== count + 1) return fail(`entry ${count + 1} is missing or out of order (found ${e.seq})`);
      if (e.prev_hash !== prev || (await auditEntryHash(e)) !== e.hash)
        return fail(`entry ${e.seq} does not match its hash chain`);
      const vouched = heads.get(e.seq);
      if (vouched !== undefined && vouched !== e.hash)
        return fail(`entry ${e.seq} differs from its checkpoint: rewritten`);
      prev = e.hash;
      count = e.seq;
    }
    progress(count);
    if (entries.length === 0) break;
  }
  const latest = heads.size ? Math.max(...heads.keys()) : undefined;
  if (latest !== undefined && latest > count)
    return {
      ok: false,
      entries: count,
      checkpoints: tokens.length,
      problem: `a checkpoint vouches for ${latest} entries, the log has ${count}: truncated`,
    };
  return {
    ok: true,
    entries: count,
    checkpoints: tokens.length,
    ...(latest !== undefined ? { latestCheckpoint: latest } : {}),
  };
}
