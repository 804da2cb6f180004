/**
 * Quota accounting, one counter row per entitlement and period. Each license is charged
 *
 *   charge = max(allowance, reported use)   while it is open (the device may still use it)
 *   charge = reported use                   once it is settled
 *
 * and `quota_counters.reserved` is the sum of the charges of that period's licenses, so what is
 * left is `quota - reserved`. Every change is a delta computed from the row values a locking
 * UPDATE returned, so concurrent issuance, settlement and report ingestion on PostgreSQL (READ
 * COMMITTED, row locks) and SQLite (one writer) add up exactly. Locks are taken in one order
 * everywhere (devices, entitlements, licenses, counters, audit head), so they cannot deadlock.
 */
import type { Kysely } from "kysely";
import { ModelVaultError } from "../../core/errors.js";
import type { Db } from "../db/open-database.js";
import type { Database } from "../db/schema.js";

type Tx = Kysely<Database>;
type Entitlement = Database["entitlements"];

interface SettledRow {
  entitlement_id: string;
  period_start: number;
  allowance: number;
  used: number;
}

/** Applies settled licenses' refunds to their counters, in a fixed order (no lock cycles). */
export async function refund(tx: Tx, settled: readonly SettledRow[]): Promise<void> {
  const deltas = new Map<string, { ent: string; period: number; delta: number }>();
  for (const r of settled) {
    const k = `${r.entitlement_id}|${r.period_start}`;
    const d = deltas.get(k) ?? { ent: r.entitlement_id, period: r.period_start, delta: 0 };
    d.delta += Math.max(0, r.allowance - r.used);
    deltas.set(k, d);
  }
  for (const d of [...deltas.values()].sort((a, b) => (a.ent + a.period < b.ent + b.period ? -1 : 1))) {
    if (d.delta === 0) continue;
    await tx
      .updateTable("quota_counters")
      .set((eb) => ({ reserved: eb("reserved", "-", d.delta) }))
      .where("entitlement_id", "=", d.ent)
      .where("period_start", "=", d.period)
      .execute();
  }
}

const SETTLED_COLUMNS = ["entitlement_id", "period_start", "allowance", "used"] as const;
const SETTLE_BATCH = 500;

/**
 * Settles the licenses of `ent` nobody can use any more: past their offline deadline (or expiry
 * without one), unrenewed. Their unreported allowance returns to the quota (reliability issue:
 * vanished devices must not hold quota for the rest of a period). Rows another transaction is
 * updating right now are skipped on PostgreSQL and settled next time. Returns the settled rows
 * for `refund`.
 */
export async function settleExpired(tx: Tx, db: Db, ent: Entitlement, now: number): Promise<SettledRow[]> {
  return tx
    .updateTable("licenses")
    .set({ released_at: now })
    .where("jti", "in", (eb) => {
      const open = eb
        .selectFrom("licenses")
        .select("jti")
        .where("entitlement_id", "=", ent.id)
        .where("released_at", "is", null)
        .where("usable_until", "<=", now)
        // Bounded work per request; a larger backlog drains over the next requests.
        .limit(SETTLE_BATCH);
      return db.dialect === "postgres" ? open.forUpdate().skipLocked() : open;
    })
    .where("released_at", "is", null)
    .returning(SETTLED_COLUMNS)
    .execute();
}

/** Settles every open license of one device on one entitlement (renewal with its usage reported). */
export async function settleDevice(
  tx: Tx,
  ent: Entitlement,
  deviceId: string,
  now: number,
): Promise<SettledRow[]> {
  return tx
    .updateTable("licenses")
    .set({ released_at: now })
    .where("device_id", "=", deviceId)
    .where("entitlement_id", "=", ent.id)
    .where("released_at", "is", null)
    .returning(SETTLED_COLUMNS)
    .execute();
}

/**
 * Reserves min(per-license allowance, what is left) from this period's quota. The counter row is
 * locked (SELECT … FOR UPDATE on PostgreSQL, the write lock on SQLite), so the read and the
 * increment are one atomic step.
 */
export async function reserveAllowance(
  tx: Tx,
  db: Db,
  ent: Entitlement,
  periodStart: number,
): Promise<number> {
  await tx
    .insertInto("quota_counters")
    .values({ entitlement_id: ent.id, period_start: periodStart, reserved: 0, used: 0 })
    .onConflict((oc) => oc.columns(["entitlement_id", "period_start"]).doNothing())
    .execute();
  let q = tx
    .selectFrom("quota_counters")
    .select(["reserved", "used"])
    .where("entitlement_id", "=", ent.id)
    .where("period_start", "=", periodStart);
  if (db.dialect === "postgres") q = q.forUpdate();
  const counter = await q.executeTakeFirstOrThrow();
  // `used` only exceeds `reserved` on counters written before charges were kept this way.
  const left = ent.quota - Math.max(counter.reserved, counter.used);
  const allowance = Math.min(ent.license_allowance, left);
  if (allowance <= 0) throw new ModelVaultError("ERR_QUOTA_EXHAUSTED");
  await tx
    .updateTable("quota_counters")
    .set((eb) => ({ reserved: eb("reserved", "+", allowance) }))
    .where("entitlement_id", "=", ent.id)
    .where("period_start", "=", periodStart)
    .execute();
  return allowance;
}

/**
 * Charges `count` reported inferences to a license and its counter. The license row is updated
 * first (row lock) and the charge computed from what that update returned, so it is exact
 * however reports and settlements interleave.
 */
export async function chargeReport(
  tx: Tx,
  jti: string,
  count: number,
  now: number,
): Promise<{ used: number; allowance: number }> {
  const lic = await tx
    .updateTable("licenses")
    .set((eb) => ({ used: eb("used", "+", count), last_report_at: now }))
    .where("jti", "=", jti)
    .returning(["used", "allowance", "released_at", "entitlement_id", "period_start"])
    .executeTakeFirstOrThrow();
  const before = lic.used - count;
  const delta = lic.released_at !== null ? count : Math.max(0, lic.used - Math.max(lic.allowance, before));
  await tx
    .updateTable("quota_counters")
    .set((eb) => ({ used: eb("used", "+", count), reserved: eb("reserved", "+", delta) }))
    .where("entitlement_id", "=", lic.entitlement_id)
    .where("period_start", "=", lic.period_start)
    .execute();
  return { used: lic.used, allowance: lic.allowance };
}
