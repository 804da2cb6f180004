import type { JSONWebKeySet } from "jose";
import { ModelVaultError } from "../../core/errors.js";
import { AUDIT_GENESIS } from "../db/open-database.js";
import { type AuditEntry, auditEntryHash } from "./audit-chain.js";
import { verifyCheckpoint } from "./checkpoints.js";

export interface AuditVerifyReport {
  entries: number;
  checkpoints: number;
  /** The largest checkpoint the log is consistent with. */
  latestCheckpoint?: number;
}

const invalid = (message: string, data: Record<string, unknown>, cause?: unknown) =>
  new ModelVaultError("ERR_AUDIT_CHECKPOINT_INVALID", message, data, cause ? { cause } : undefined);

/**
 * Checks an audit log offline: each checkpoint's signature, then every entry's sequence and
 * hash chain, and that the entry each checkpoint vouches for is there with that hash.
 * Checkpoints kept elsewhere (exported) are what catch a truncated or wholly recomputed log:
 * pass them with the stored ones, in any order.
 *
 * The check is order-free: a checkpoint is evidence about one entry of the chain, and the chain
 * alone orders entries. Checkpoint times are not compared with each other, since instances with
 * different clocks, or concurrent writers before writes were serialised, produce valid histories
 * whose times do not follow their sizes. Two checkpoints of one size with different heads are
 * equivocation. Entries stream through, so memory stays flat however long the log is.
 * Throws ERR_AUDIT_CHAIN_BROKEN (data.seq = first bad entry) or ERR_AUDIT_CHECKPOINT_INVALID.
 */
export async function verifyAuditLog(
  entries: Iterable<AuditEntry> | AsyncIterable<AuditEntry>,
  checkpointTokens: readonly string[],
  jwks: JSONWebKeySet,
): Promise<AuditVerifyReport> {
  const heads = new Map<number, string>();
  for (const token of checkpointTokens) {
    let cp: { size: number; head: string };
    try {
      cp = await verifyCheckpoint(token, jwks);
    } catch (cause) {
      throw invalid("an audit checkpoint's signature does not verify", {}, cause);
    }
    const other = heads.get(cp.size);
    if (other !== undefined && other !== cp.head)
      throw invalid(`two checkpoints of size ${cp.size} disagree (equivocation)`, { size: cp.size });
    heads.set(cp.size, cp.head);
  }
  let prev = AUDIT_GENESIS;
  let count = 0;
  for await (const e of entries) {
    const expectedSeq = count + 1;
    if (e.seq !== expectedSeq) {
      throw new ModelVaultError(
        "ERR_AUDIT_CHAIN_BROKEN",
        `audit entry ${expectedSeq} is missing or out of order (found ${e.seq})`,
        { seq: expectedSeq },
      );
    }
    if (e.prev_hash !== prev || auditEntryHash(e) !== e.hash) {
      throw new ModelVaultError(
        "ERR_AUDIT_CHAIN_BROKEN",
        `audit entry ${e.seq} does not match its hash chain`,
        { seq: e.seq },
      );
    }
    const vouched = heads.get(e.seq);
    if (vouched !== undefined && vouched !== e.hash)
      throw invalid(`entry ${e.seq} differs from its checkpoint: rewritten`, { size: e.seq, seq: e.seq });
    prev = e.hash;
    count = e.seq;
  }
  let latest: number | undefined;
  for (const size of heads.keys()) if (latest === undefined || size > latest) latest = size;
  if (latest !== undefined && latest > count) {
    throw invalid(`the log has ${count} entries but a checkpoint vouches for ${latest}: truncated`, {
      size: latest,
      seq: count + 1,
    });
  }
  return {
    entries: count,
    checkpoints: checkpointTokens.length,
    ...(latest !== undefined ? { latestCheckpoint: latest } : {}),
  };
}
