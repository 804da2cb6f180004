import { sql } from "kysely";
import type { Db } from "../../../src/server/db/open-database.js";
import type { SimDevice } from "./sim-device.js";

/**
 * Compares the database with what devices were told: every acknowledged report and license is
 * stored, and counters equal the sum of the stored reports (nothing lost, nothing counted
 * twice). Returns the problems found; none means it holds.
 */
export async function checkAccounting(db: Db, devices: SimDevice[]): Promise<string[]> {
  const problems: string[] = [];
  for (const d of devices) {
    const rows = await db.kysely
      .selectFrom("usage_reports")
      .select(["seq", "hash", "license_jti"])
      .where("device_id", "=", d.device.jkt)
      .orderBy("seq")
      .execute();
    const stored = new Map(rows.map((r) => [r.seq, r]));
    for (const [seq, ack] of d.acked) {
      const row = stored.get(seq);
      if (!row) problems.push(`device ${d.device.jkt}: acknowledged report ${seq} is missing`);
      else if (row.hash !== ack.hash) problems.push(`device ${d.device.jkt}: report ${seq} differs`);
    }
    if (rows.some((r, i) => r.seq !== i + 1))
      problems.push(`device ${d.device.jkt}: stored reports have a gap`);
    const licenses = await db.kysely
      .selectFrom("licenses")
      .select("jti")
      .where("jti", "in", d.licenses.length ? d.licenses : ["-"])
      .execute();
    if (licenses.length !== new Set(d.licenses).size)
      problems.push(
        `device ${d.device.jkt}: ${d.licenses.length - licenses.length} acknowledged licenses missing`,
      );
  }
  const perLicense = await db.kysely
    .selectFrom("licenses")
    .leftJoin("usage_reports", "usage_reports.license_jti", "licenses.jti")
    .select([
      "licenses.jti",
      "licenses.used",
      (eb) => eb.fn.coalesce(eb.fn.sum<number>("usage_reports.count"), sql<number>`0`).as("reported"),
    ])
    .groupBy(["licenses.jti", "licenses.used"])
    .execute();
  for (const l of perLicense)
    if (Number(l.used) !== Number(l.reported))
      problems.push(`license ${l.jti}: used ${l.used} but its reports sum to ${l.reported}`);
  const perCounter = await db.kysely
    .selectFrom("quota_counters")
    .select(["entitlement_id", "period_start", "used"])
    .execute();
  for (const c of perCounter) {
    const sum = await db.kysely
      .selectFrom("usage_reports")
      .innerJoin("licenses", "licenses.jti", "usage_reports.license_jti")
      .select((eb) => eb.fn.coalesce(eb.fn.sum<number>("usage_reports.count"), sql<number>`0`).as("n"))
      .where("licenses.entitlement_id", "=", c.entitlement_id)
      .where("licenses.period_start", "=", c.period_start)
      .executeTakeFirstOrThrow();
    if (Number(c.used) !== Number(sum.n))
      problems.push(`quota ${c.entitlement_id}: used ${c.used} but reports sum to ${sum.n}`);
  }
  return problems;
}
