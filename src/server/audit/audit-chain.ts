import { createHash } from "node:crypto";
import type { AuditEntry } from "./audit-entry.js";
import { canonicalJson } from "./canonical-json.js";

export type { AuditEntry };

/**
 * hash(n) = SHA-256( prev_hash || "\n" || canonical JSON of {seq, at, actor, action, outcome, subject, detail} ),
 * hex. Binding seq and prev_hash makes every edit, deletion, insertion or reordering visible
 * from that entry on.
 */
export function auditEntryHash(e: Omit<AuditEntry, "hash">): string {
  const body = canonicalJson({
    seq: e.seq,
    at: e.at,
    actor: e.actor,
    action: e.action,
    outcome: e.outcome,
    subject: e.subject,
    detail: e.detail,
  });
  return createHash("sha256").update(`${e.prev_hash}\n${body}`).digest("hex");
}
