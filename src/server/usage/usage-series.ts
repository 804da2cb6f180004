import { sql } from "kysely";
import type { Db } from "../db/open-database.js";

export interface SeriesFilter {
  model?: string | undefined;
  entitlement?: string | undefined;
  device?: string | undefined;
  from: number;
  to: number;
  /** Seconds per point: 3600 or 86400. */
  bucket: number;
}

// The bucket is a literal (one of two values from the schema): PostgreSQL matches GROUP BY
// expressions textually, and two bound parameters would not match.
/** Inferences and reports per time bucket (by the end of each report's window), oldest first. */
export async function usageSeries(
  db: Db,
  f: SeriesFilter,
): Promise<{ t: number; inferences: number; reports: number }[]> {
  const bucket = sql<number>`(usage_reports.window_to - usage_reports.window_to % ${sql.lit(f.bucket)})`;
  let q = db.kysely
    .selectFrom("usage_reports")
    .innerJoin("licenses", "licenses.jti", "usage_reports.license_jti")
    .select((eb) => [
      bucket.as("t"),
      eb.fn.sum<number>("usage_reports.count").as("inferences"),
      eb.fn.countAll<number>().as("reports"),
    ])
    .where("usage_reports.window_to", ">=", f.from)
    .where("usage_reports.window_to", "<", f.to);
  if (f.model) q = q.where("licenses.model_id", "=", f.model);
  if (f.entitlement) q = q.where("licenses.entitlement_id", "=", f.entitlement);
  if (f.device) q = q.where("usage_reports.device_id", "=", f.device);
  const rows = await q.groupBy(bucket).orderBy(bucket).execute();
  return rows.map((r) => ({ t: Number(r.t), inferences: Number(r.inferences), reports: Number(r.reports) }));
}
