import type { Kysely } from "kysely";
import { appendAudit } from "../audit/audit-log.js";
import type { Database } from "../db/schema.js";
import type { Metrics } from "./metrics.js";

export type AnomalyKind =
  | "request_spike"
  | "denial_burst"
  | "usage_gap"
  | "usage_fork"
  | "usage_resync"
  | "usage_rollback"
  | "quota_overrun"
  | "device_limit"
  | "clock_rollback"
  | "privileged_key_issued"
  | "output_outlier"
  | "output_drift";

export interface Anomaly {
  kind: AnomalyKind;
  severity: "warning" | "alert";
  principalId?: string | null;
  deviceId?: string | null;
  licenseJti?: string | null;
  /** What it is about when that is not a device: an entitlement id, `model@version`. */
  subject?: string | null;
  detail?: Record<string, unknown>;
}

/** Records an anomaly for auditors, with its audit entry, inside the caller's transaction. */
export async function recordAnomaly(
  tx: Kysely<Database>,
  a: Anomaly,
  now: number,
  metrics: Metrics,
): Promise<void> {
  await tx
    .insertInto("anomalies")
    .values({
      kind: a.kind,
      severity: a.severity,
      principal_id: a.principalId ?? null,
      device_id: a.deviceId ?? null,
      license_jti: a.licenseJti ?? null,
      detail: JSON.stringify(a.detail ?? {}),
      created_at: now,
      subject: a.subject ?? null,
      acknowledged_at: null,
      acknowledged_by: null,
      acknowledgement: null,
    })
    .execute();
  await appendAudit(
    tx,
    {
      actor: "system",
      action: "anomaly",
      outcome: "success",
      subject: a.subject ?? a.deviceId ?? a.principalId ?? "-",
      detail: { kind: a.kind, severity: a.severity, ...a.detail },
    },
    now,
  );
  metrics.inc("modelvault_anomalies_total", "Anomalies recorded, by kind.", { kind: a.kind });
}
