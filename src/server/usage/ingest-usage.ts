import type { Kysely } from "kysely";
import { type ErrorCode, isModelVaultError, ModelVaultError } from "../../core/errors.js";
import { appendAudit } from "../audit/audit-log.js";
import type { Principal, ServerContext } from "../context.js";
import { classifyDbError } from "../db/db-errors.js";
import { withTransaction } from "../db/open-database.js";
import type { Database } from "../db/schema.js";
import { type AnomalyKind, recordAnomaly } from "../monitoring/anomalies.js";
import { checkOutputDrift } from "../monitoring/output-drift.js";
import { chargeReport } from "../policy/quota.js";
import { type DecodedReport, decodeReport } from "./decode-report.js";
import { aggregatesFit, type MonitoredTarget, PolicyCache, storeAggregates } from "./output-aggregates.js";

export { MAX_REPORT_BYTES } from "./decode-report.js";
export const MAX_REPORTS_PER_BATCH = 100;
/** Report windows may run this far ahead of server time before they count as a clock anomaly. */
const CLOCK_SKEW = 300;
/** How many sequence numbers an aggregated audit entry or anomaly names (the rest are counted). */
const NAMED_SEQS = 10;

export interface ReportResult {
  seq: number | null;
  status: "accepted" | "duplicate" | "rejected";
  code?: ErrorCode;
}

/** What one batch found, recorded once at its end: one anomaly per kind, one audit entry per outcome. */
class BatchFindings {
  /** Devices whose output aggregates arrived, checked for drift after the commit. */
  readonly monitored = new Map<string, MonitoredTarget>();

  /** Keyed by kind and device (a batch normally comes from one device). */
  readonly anomalies = new Map<
    string,
    {
      kind: AnomalyKind;
      severity: "warning" | "alert";
      device: string;
      licenses: Set<string>;
      seqs: number[];
    }
  >();

  note(kind: AnomalyKind, severity: "warning" | "alert", device: string, license: string, seq: number): void {
    const key = `${kind}|${device}`;
    const a = this.anomalies.get(key) ?? { kind, severity, device, licenses: new Set(), seqs: [] };
    a.licenses.add(license);
    a.seqs.push(seq);
    this.anomalies.set(key, a);
  }
}

/**
 * Applies one verified report to the device's chain inside the batch's transaction. Expected
 * refusals are returned, not thrown, so one bad report never rolls back the good ones.
 */
async function apply(
  tx: Kysely<Database>,
  ctx: ServerContext,
  r: DecodedReport,
  found: BatchFindings,
  policies: PolicyCache,
): Promise<ReportResult> {
  const now = ctx.now();
  const { claims } = r;
  const refuse = (code: ErrorCode): ReportResult => ({ seq: claims.seq, status: "rejected", code });
  const lic = await tx.selectFrom("licenses").selectAll().where("jti", "=", claims.lic).executeTakeFirst();
  if (!lic) return refuse("ERR_USAGE_INVALID");
  if (lic.device_id !== r.deviceId) return refuse("ERR_USAGE_WRONG_DEVICE");
  if (lic.revoked_at !== null) return refuse("ERR_LICENSE_REVOKED");
  // The device row is the chain's lock: two batches of one device apply one after the other.
  let q = tx
    .selectFrom("devices")
    .select(["report_seq", "report_head", "report_last_to"])
    .where("id", "=", r.deviceId);
  if (ctx.db.dialect === "postgres") q = q.forUpdate();
  const device = await q.executeTakeFirstOrThrow();
  const note = (kind: AnomalyKind, severity: "warning" | "alert") =>
    found.note(kind, severity, r.deviceId, lic.jti, claims.seq);

  if (claims.seq <= device.report_seq) {
    const stored = await tx
      .selectFrom("usage_reports")
      .select(["hash", "prev"])
      .where("device_id", "=", r.deviceId)
      .where("seq", "=", claims.seq)
      .executeTakeFirst();
    if (stored?.hash === r.hash) return { seq: claims.seq, status: "duplicate" };
    // One behind with the same predecessor: the device lost its last write (tolerated, OEMCrypto-style ±1).
    const oneBehind = claims.seq === device.report_seq && stored?.prev === claims.prev;
    const kind = oneBehind
      ? "usage_resync"
      : claims.seq < device.report_seq
        ? "usage_rollback"
        : "usage_fork";
    note(kind, oneBehind ? "warning" : "alert");
    await keepEvidence(tx, r, kind, now);
    return refuse("ERR_USAGE_FORK");
  }
  if (claims.seq > device.report_seq + 1) {
    note("usage_gap", "alert");
    return refuse("ERR_USAGE_GAP");
  }
  if (claims.prev !== device.report_head) {
    note("usage_fork", "alert");
    await keepEvidence(tx, r, "usage_fork", now);
    return refuse("ERR_USAGE_FORK");
  }
  if (
    claims.to > now + CLOCK_SKEW ||
    claims.from + CLOCK_SKEW < device.report_last_to ||
    claims.to - claims.from > now - lic.issued_at + CLOCK_SKEW + 86400
  ) {
    note("clock_rollback", "warning");
  }
  // Aggregates must fit the policy the model signed; a retired version's are dropped.
  const policy = claims.agg ? await policies.get(lic.model_id, lic.model_version) : undefined;
  if (claims.agg && policy && !aggregatesFit(claims.agg, policy)) return refuse("ERR_USAGE_INVALID");
  await tx
    .insertInto("usage_reports")
    .values({
      device_id: r.deviceId,
      seq: claims.seq,
      license_jti: lic.jti,
      hash: r.hash,
      prev: claims.prev,
      count: claims.count,
      window_from: claims.from,
      window_to: claims.to,
      received_at: now,
    })
    .execute();
  await tx
    .updateTable("devices")
    .set({
      report_seq: claims.seq,
      report_head: r.hash,
      report_last_to: Math.max(device.report_last_to, claims.to),
    })
    .where("id", "=", r.deviceId)
    .execute();
  if (claims.agg && policy) {
    const target = {
      modelId: lic.model_id,
      version: lic.model_version,
      deviceId: r.deviceId,
      entitlementId: lic.entitlement_id,
    };
    await storeAggregates(tx, target, claims.seq, claims.agg, now);
    found.monitored.set(
      `${target.deviceId}|${target.modelId}|${target.version}|${target.entitlementId}`,
      target,
    );
  }
  const charged = await chargeReport(tx, lic.jti, claims.count, now);
  if (charged.used > charged.allowance) note("quota_overrun", "alert");
  return { seq: claims.seq, status: "accepted" };
}

/**
 * Keeps a report that conflicts with the device's chain, as the device signed it: with the
 * accepted report of the same sequence number (stored by hash), it is the device's own evidence
 * of a cloned profile, a restored one, or a lost write (RFC 9162 "Misbehaving Logs"). A repeat of
 * the same report is kept once.
 */
async function keepEvidence(tx: Kysely<Database>, r: DecodedReport, kind: AnomalyKind, now: number) {
  await tx
    .insertInto("usage_evidence")
    .values({
      device_id: r.deviceId,
      hash: r.hash,
      seq: r.claims.seq,
      kind,
      token: r.token,
      received_at: now,
    })
    .onConflict((oc) => oc.columns(["device_id", "hash"]).doNothing())
    .execute();
}

/** Writes what a batch found: one anomaly per kind and one audit entry per outcome, not one per report. */
async function record(
  tx: Kysely<Database>,
  ctx: ServerContext,
  principal: Principal,
  results: readonly ReportResult[],
  decoded: readonly (DecodedReport | ModelVaultError)[],
  found: BatchFindings,
): Promise<void> {
  const now = ctx.now();
  for (const a of found.anomalies.values()) {
    await recordAnomaly(
      tx,
      {
        kind: a.kind,
        severity: a.severity,
        principalId: principal.id,
        deviceId: a.device,
        licenseJti: a.licenses.size === 1 ? [...a.licenses][0] : null,
        detail: { reports: a.seqs.length, seqs: a.seqs.slice(0, NAMED_SEQS) },
      },
      now,
      ctx.metrics,
    );
  }
  const device = decoded.find((d): d is DecodedReport => !(d instanceof ModelVaultError))?.deviceId ?? "-";
  const accepted = results.flatMap((r, i) => (r.status === "accepted" ? [decoded[i] as DecodedReport] : []));
  if (accepted.length > 0) {
    const seqs = accepted.map((d) => d.claims.seq).sort((a, b) => a - b);
    await appendAudit(
      tx,
      {
        actor: principal.id,
        action: "usage.accept",
        outcome: "success",
        subject: device,
        detail: {
          reports: accepted.length,
          seqs: [seqs[0], seqs.at(-1)],
          count: accepted.reduce((n, d) => n + d.claims.count, 0),
          licenses: [...new Set(accepted.map((d) => d.claims.lic))].slice(0, NAMED_SEQS),
          head: accepted.find((d) => d.claims.seq === seqs.at(-1))?.hash,
        },
      },
      now,
    );
  }
  const rejected = results.filter((r) => r.status === "rejected");
  if (rejected.length > 0) {
    const codes: Record<string, number> = {};
    for (const r of rejected)
      codes[r.code ?? "ERR_USAGE_INVALID"] = (codes[r.code ?? "ERR_USAGE_INVALID"] ?? 0) + 1;
    await appendAudit(
      tx,
      {
        actor: principal.id,
        action: "usage.accept",
        outcome: "denied",
        subject: device,
        detail: { reports: rejected.length, codes, seqs: rejected.map((r) => r.seq).slice(0, NAMED_SEQS) },
      },
      now,
    );
  }
}

/**
 * Ingests a batch of usage reports, each on its own: in sequence order, idempotent (a repeat is
 * acknowledged, not counted twice), gaps and forks recorded as anomalies and not acknowledged.
 * Returns per-report results and the device's acknowledged head, so a client can resync.
 */
export async function ingestUsage(ctx: ServerContext, principal: Principal, tokens: string[]) {
  const decoded: (DecodedReport | ModelVaultError)[] = [];
  for (const t of tokens)
    decoded.push(
      await decodeReport(ctx, principal, t).catch((e: unknown) => {
        // The database failing is not the report's fault: answer 503, never "invalid".
        if (classifyDbError(e)) throw e;
        return isModelVaultError(e) ? e : new ModelVaultError("ERR_USAGE_INVALID");
      }),
    );
  const order = decoded
    .map((d, i) => ({ d, i }))
    .sort(
      (a, b) =>
        (a.d instanceof ModelVaultError ? 0 : a.d.claims.seq) -
        (b.d instanceof ModelVaultError ? 0 : b.d.claims.seq),
    );
  const results: ReportResult[] = new Array(tokens.length);
  // One transaction per batch: one commit (one fsync) instead of one per report; what it found
  // is written last, so every transaction takes the audit head's lock after the rows it changes.
  const monitored = await withTransaction(ctx.db, async (tx) => {
    const found = new BatchFindings();
    const policies = new PolicyCache(tx);
    for (const { d, i } of order) {
      results[i] =
        d instanceof ModelVaultError
          ? { seq: null, status: "rejected", code: d.code }
          : await apply(tx, ctx, d, found, policies);
    }
    await record(tx, ctx, principal, results, decoded, found);
    return [...found.monitored.values()];
  });
  // After the commit, in its own transaction: a failing check never costs the reports.
  for (const target of monitored)
    await checkOutputDrift(ctx, target).catch((e: unknown) => {
      if (!ctx.db.health.failed(e))
        ctx.logger.log("error", "output drift check failed", { error: String((e as Error)?.stack ?? e) });
    });
  const count = (status: ReportResult["status"]) => results.filter((r) => r.status === status).length;
  ctx.metrics.inc(
    "modelvault_usage_reports_total",
    "Usage reports by outcome.",
    { outcome: "accepted" },
    count("accepted"),
  );
  ctx.metrics.inc(
    "modelvault_usage_reports_total",
    "Usage reports by outcome.",
    { outcome: "rejected" },
    count("rejected"),
  );
  const deviceId = decoded.find((d): d is DecodedReport => !(d instanceof ModelVaultError))?.deviceId;
  const head = deviceId
    ? await ctx.db.kysely
        .selectFrom("devices")
        .select(["report_seq as seq", "report_head as hash"])
        .where("id", "=", deviceId)
        .executeTakeFirst()
    : undefined;
  return { results, head: head ?? null };
}
