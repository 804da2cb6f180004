import { sql } from "kysely";
import type { Db } from "./open-database.js";

/** Rows deleted per statement, so a backlog never holds the write lock for long. */
const BATCH = 2000;
/** Batches per table per call: a call stays bounded; the next maintenance tick continues. */
const MAX_BATCHES = 10;

/** Rows deleted, by table (the names the metrics use). */
export interface RetentionResult {
  licenses: number;
  usage_reports: number;
  quota_counters: number;
  anomalies: number;
  usage_evidence: number;
}

/**
 * Deletes traffic-made rows `retentionSeconds` after they stopped mattering, so that nothing a
 * device does grows the database for ever (checklist L3; docs/RETENTION.md lists every table):
 *
 * - a license once settled (its allowance charged or returned) and past `usable_until`, with the
 *   usage reports it carried. A revoked license is kept: it is what refuses its device again.
 *   The device's chain head lives on `devices`, so later reports still chain.
 * - quota counters of periods that ended, anomalies, and fork evidence, by their own time.
 */
export async function pruneRetained(db: Db, now: number, retentionSeconds: number): Promise<RetentionResult> {
  const cutoff = now - retentionSeconds;
  const k = db.kysely;
  const result: RetentionResult = {
    licenses: 0,
    usage_reports: 0,
    quota_counters: 0,
    anomalies: 0,
    usage_evidence: 0,
  };
  for (let i = 0; i < MAX_BATCHES; i++) {
    const jtis = (
      await k
        .selectFrom("licenses")
        .select("jti")
        .where("usable_until", "<", cutoff)
        .where("released_at", "is not", null)
        .where("revoked_at", "is", null)
        .limit(BATCH)
        .execute()
    ).map((r) => r.jti);
    if (jtis.length === 0) break;
    // Reports first: a crash in between leaves licenses the next tick finds again.
    const reports = await k.deleteFrom("usage_reports").where("license_jti", "in", jtis).executeTakeFirst();
    const licenses = await k.deleteFrom("licenses").where("jti", "in", jtis).executeTakeFirst();
    result.usage_reports += Number(reports.numDeletedRows);
    result.licenses += Number(licenses.numDeletedRows);
    if (jtis.length < BATCH) break;
  }
  // A period's counter matters until the period ends (its start + the entitlement's period).
  const counters = await k
    .deleteFrom("quota_counters")
    .where("period_start", "<", cutoff)
    .where(
      sql<boolean>`period_start + (select e.period_seconds from entitlements e where e.id = quota_counters.entitlement_id) < ${cutoff}`,
    )
    .executeTakeFirst();
  result.quota_counters = Number(counters.numDeletedRows);
  for (let i = 0; i < MAX_BATCHES; i++) {
    const r = await k
      .deleteFrom("anomalies")
      .where("id", "in", (eb) =>
        eb.selectFrom("anomalies").select("id").where("created_at", "<", cutoff).limit(BATCH),
      )
      .executeTakeFirst();
    result.anomalies += Number(r.numDeletedRows);
    if (Number(r.numDeletedRows) < BATCH) break;
  }
  const evidence = await k.deleteFrom("usage_evidence").where("received_at", "<", cutoff).executeTakeFirst();
  result.usage_evidence = Number(evidence.numDeletedRows);
  return result;
}
