import type { JSONWebKeySet } from "jose";
import { ModelVaultError } from "../../core/errors.js";
import { AUDIT_GENESIS } from "../db/open-database.js";
import { type AuditEntry, auditEntryHash } from "./audit-chain.js";
import { verifyCheckpoint } from "./checkpoints.js";

export interface AuditVerifyReport {
  entries: number;
  checkpoints: number;
  /** The newest checkpoint the log is consistent with. */
  latestCheckpoint?: number;
}

/**
 * Checks an audit log offline: every entry's sequence and hash chain, then each checkpoint's
 * signature, monotonicity and agreement with the log. Checkpoints kept elsewhere (exported)
 * are what catch a truncated or wholly recomputed log: pass them as `externalCheckpoints`.
 * Throws ERR_AUDIT_CHAIN_BROKEN (data.seq = first bad entry) or ERR_AUDIT_CHECKPOINT_INVALID.
 */
export async function verifyAuditLog(
  entries: readonly AuditEntry[],
  checkpointTokens: readonly string[],
  jwks: JSONWebKeySet,
): Promise<AuditVerifyReport> {
  let prev = AUDIT_GENESIS;
  const hashes = new Map<number, string>();
  for (const [i, e] of entries.entries()) {
    const expectedSeq = i + 1;
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
    hashes.set(e.seq, e.hash);
    prev = e.hash;
  }
  let last: { size: number; head: string; at: number } | undefined;
  const seen = new Map<number, string>();
  for (const token of checkpointTokens) {
    let cp: { size: number; head: string; at: number };
    try {
      cp = await verifyCheckpoint(token, jwks);
    } catch (cause) {
      throw new ModelVaultError(
        "ERR_AUDIT_CHECKPOINT_INVALID",
        "an audit checkpoint's signature does not verify",
        {},
        { cause },
      );
    }
    const other = seen.get(cp.size);
    if (other !== undefined && other !== cp.head) {
      throw new ModelVaultError(
        "ERR_AUDIT_CHECKPOINT_INVALID",
        `two checkpoints of size ${cp.size} disagree (equivocation)`,
        { size: cp.size },
      );
    }
    seen.set(cp.size, cp.head);
    if (last && (cp.size < last.size || (cp.size > last.size && cp.at <= last.at))) {
      throw new ModelVaultError(
        "ERR_AUDIT_CHECKPOINT_INVALID",
        `checkpoint of size ${cp.size} goes backwards`,
        { size: cp.size },
      );
    }
    if (cp.size > entries.length) {
      throw new ModelVaultError(
        "ERR_AUDIT_CHECKPOINT_INVALID",
        `the log has ${entries.length} entries but a checkpoint vouches for ${cp.size}: truncated`,
        { size: cp.size, seq: entries.length + 1 },
      );
    }
    if (hashes.get(cp.size) !== cp.head) {
      throw new ModelVaultError(
        "ERR_AUDIT_CHECKPOINT_INVALID",
        `entry ${cp.size} differs from its checkpoint: rewritten`,
        { size: cp.size, seq: cp.size },
      );
    }
    if (!last || cp.size >= last.size) last = cp;
  }
  return {
    entries: entries.length,
    checkpoints: checkpointTokens.length,
    ...(last ? { latestCheckpoint: last.size } : {}),
  };
}
