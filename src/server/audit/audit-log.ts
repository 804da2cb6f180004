import type { Kysely } from "kysely";
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

/**
 * Appends one entry inside the caller's transaction, so the entry commits with the action it
 * records or not at all. The single-row audit_head update serialises appends (a row lock on
 * PostgreSQL, the write lock on SQLite), so concurrent appends form one linear chain.
 */
export async function appendAudit(tx: Kysely<Database>, event: AuditEvent, now: number): Promise<number> {
  const head = await tx
    .updateTable("audit_head")
    .set((eb) => ({ seq: eb("seq", "+", 1) }))
    .where("id", "=", 1)
    .returning(["seq", "hash"])
    .executeTakeFirstOrThrow();
  const entry = {
    seq: head.seq,
    at: now,
    actor: event.actor,
    action: event.action,
    outcome: event.outcome,
    subject: event.subject,
    detail: canonicalJson(event.detail ?? {}),
    prev_hash: head.hash,
  };
  const hash = auditEntryHash(entry);
  await tx
    .insertInto("audit_log")
    .values({ ...entry, hash })
    .execute();
  await tx.updateTable("audit_head").set({ hash }).where("id", "=", 1).execute();
  return entry.seq;
}
