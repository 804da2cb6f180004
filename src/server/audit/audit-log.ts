import type { Kysely } from "kysely";
import { queueBeforeCommit } from "../db/open-database.js";
import type { Database } from "../db/schema.js";
import { auditEntryHash } from "./audit-chain.js";
import { canonicalJson } from "./canonical-json.js";

export interface AuditEvent {
  actor: string;
  action: string;
  outcome: "success" | "denied" | "failure";
  subject: string;
  detail?: Record<string, unknown>;
}

interface Queued {
  event: AuditEvent;
  now: number;
}

/**
 * Appends an entry inside the caller's transaction, so it commits with the action it records or
 * not at all. Entries are written just before the commit (queueBeforeCommit), all of a
 * transaction's together: the single-row audit_head update that serialises appends (a row lock
 * on PostgreSQL, the write lock on SQLite) is then held for the commit, not for the whole
 * transaction, and concurrent transactions still form one linear chain.
 */
export async function appendAudit(tx: Kysely<Database>, event: AuditEvent, now: number): Promise<void> {
  const queued = { event, now };
  if (!queueBeforeCommit(tx, "audit", queued, (all) => writeEntries(tx, all)))
    await writeEntries(tx, [queued]);
}

/** Rows per INSERT: far below both dialects' bound-parameter limits. */
const CHUNK = 500;

async function writeEntries(tx: Kysely<Database>, queued: Queued[]): Promise<void> {
  const head = await tx
    .updateTable("audit_head")
    .set((eb) => ({ seq: eb("seq", "+", queued.length) }))
    .where("id", "=", 1)
    .returning(["seq", "hash"])
    .executeTakeFirstOrThrow();
  let seq = head.seq - queued.length;
  let prev = head.hash;
  const rows = queued.map(({ event, now }) => {
    const entry = {
      seq: ++seq,
      at: now,
      actor: event.actor,
      action: event.action,
      outcome: event.outcome,
      subject: event.subject,
      detail: canonicalJson(event.detail ?? {}),
      prev_hash: prev,
    };
    prev = auditEntryHash(entry);
    return { ...entry, hash: prev };
  });
  for (let i = 0; i < rows.length; i += CHUNK)
    await tx
      .insertInto("audit_log")
      .values(rows.slice(i, i + CHUNK))
      .execute();
  await tx.updateTable("audit_head").set({ hash: prev }).where("id", "=", 1).execute();
}
