import { compactVerify, decodeProtectedHeader, importJWK } from "jose";
import type { Kysely } from "kysely";
import { fromUtf8 } from "../../core/bytes.js";
import { type ErrorCode, isModelVaultError, ModelVaultError } from "../../core/errors.js";
import { checkJoseHeader } from "../../core/jose-header.js";
import { TYP } from "../../core/token-types.js";
import { type UsageClaims, usageReportHash, usageReportKid } from "../../core/usage-report.js";
import { appendAudit } from "../audit/audit-log.js";
import type { Principal, ServerContext } from "../context.js";
import { withTransaction } from "../db/open-database.js";
import type { Database } from "../db/schema.js";
import { recordAnomaly } from "../monitoring/anomalies.js";

export const MAX_REPORTS_PER_BATCH = 100;
export const MAX_REPORT_BYTES = 4096;
/** Report windows may run this far ahead of server time before they count as a clock anomaly. */
const CLOCK_SKEW = 300;

export interface ReportResult {
  seq: number | null;
  status: "accepted" | "duplicate" | "rejected";
  code?: ErrorCode;
}

interface Decoded {
  token: string;
  deviceId: string;
  claims: UsageClaims;
  hash: string;
}

const isCount = (v: unknown, max = Number.MAX_SAFE_INTEGER) =>
  typeof v === "number" && Number.isSafeInteger(v) && v >= 0 && v <= max;

/** Signature (under the device key on record) before claims; then the claims' shape. */
async function decode(ctx: ServerContext, principal: Principal, token: string): Promise<Decoded> {
  const bad = (why: string) => new ModelVaultError("ERR_USAGE_INVALID", `usage report: ${why}`);
  if (typeof token !== "string" || token.length > MAX_REPORT_BYTES) throw bad("too large");
  let header: Record<string, unknown>;
  try {
    header = decodeProtectedHeader(token) as Record<string, unknown>;
  } catch {
    throw bad("not a compact JWS");
  }
  const problem = checkJoseHeader(header, { alg: "ES256", typ: TYP.usage });
  if (problem) throw bad(`header must be {alg: ES256, typ: modelvault-usage+jwt, kid}: ${problem.message}`);
  const kid = usageReportKid(token);
  const device = kid
    ? await ctx.db.kysely
        .selectFrom("devices")
        .select(["id", "principal_id", "signing_jwk"])
        .where("id", "=", kid)
        .executeTakeFirst()
    : undefined;
  if (!device) throw bad("unknown device");
  if (device.principal_id !== principal.id)
    throw new ModelVaultError("ERR_USAGE_WRONG_DEVICE", "device belongs to another principal");
  let payload: Uint8Array;
  try {
    ({ payload } = await compactVerify(token, await importJWK(JSON.parse(device.signing_jwk), "ES256"), {
      algorithms: ["ES256"],
    }));
  } catch {
    throw bad("signature does not verify under the device key");
  }
  let c: UsageClaims;
  try {
    c = JSON.parse(fromUtf8(payload));
  } catch {
    throw bad("payload is not JSON");
  }
  if (
    typeof c.lic !== "string" ||
    !isCount(c.seq) ||
    c.seq < 1 ||
    typeof c.prev !== "string" ||
    !isCount(c.count, 1e9) ||
    !isCount(c.from) ||
    !isCount(c.to) ||
    c.from > c.to ||
    !isCount(c.iat)
  ) {
    throw bad("claims are malformed");
  }
  return { token, deviceId: device.id, claims: c, hash: await usageReportHash(token) };
}

/**
 * Applies one verified report to the device's chain inside the batch's transaction. Expected
 * refusals are returned, not thrown, so one bad report never rolls back the good ones.
 */
async function apply(
  tx: Kysely<Database>,
  ctx: ServerContext,
  principal: Principal,
  r: Decoded,
): Promise<ReportResult> {
  const now = ctx.now();
  const { claims } = r;
  const refuse = (code: ErrorCode): ReportResult => ({ seq: claims.seq, status: "rejected", code });
  const lic = await tx.selectFrom("licenses").selectAll().where("jti", "=", claims.lic).executeTakeFirst();
  if (!lic) return refuse("ERR_USAGE_INVALID");
  if (lic.device_id !== r.deviceId) return refuse("ERR_USAGE_WRONG_DEVICE");
  if (lic.revoked_at !== null) return refuse("ERR_LICENSE_REVOKED");
  const device = await tx
    .selectFrom("devices")
    .select(["report_seq", "report_head", "report_last_to"])
    .where("id", "=", r.deviceId)
    .executeTakeFirstOrThrow();
  const anomaly = (
    kind: Parameters<typeof recordAnomaly>[1]["kind"],
    severity: "warning" | "alert",
    detail: Record<string, unknown>,
  ) =>
    recordAnomaly(
      tx,
      { kind, severity, principalId: principal.id, deviceId: r.deviceId, licenseJti: lic.jti, detail },
      now,
      ctx.metrics,
    );

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
    await anomaly(
      oneBehind ? "usage_resync" : claims.seq < device.report_seq ? "usage_rollback" : "usage_fork",
      oneBehind ? "warning" : "alert",
      {
        seq: claims.seq,
        head: device.report_seq,
      },
    );
    return { seq: claims.seq, status: "rejected", code: "ERR_USAGE_FORK" };
  }
  if (claims.seq > device.report_seq + 1) {
    await anomaly("usage_gap", "alert", { seq: claims.seq, expected: device.report_seq + 1 });
    return { seq: claims.seq, status: "rejected", code: "ERR_USAGE_GAP" };
  }
  if (claims.prev !== device.report_head) {
    await anomaly("usage_fork", "alert", {
      seq: claims.seq,
      reason: "prev does not match the acknowledged head",
    });
    return { seq: claims.seq, status: "rejected", code: "ERR_USAGE_FORK" };
  }
  if (
    claims.to > now + CLOCK_SKEW ||
    claims.from + CLOCK_SKEW < device.report_last_to ||
    claims.to - claims.from > now - lic.issued_at + CLOCK_SKEW + 86400
  ) {
    await anomaly("clock_rollback", "warning", {
      seq: claims.seq,
      from: claims.from,
      to: claims.to,
      serverTime: now,
    });
  }
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
  await tx
    .updateTable("licenses")
    .set((eb) => ({ used: eb("used", "+", claims.count), last_report_at: now }))
    .where("jti", "=", lic.jti)
    .execute();
  await tx
    .updateTable("quota_counters")
    .set((eb) => ({ used: eb("used", "+", claims.count) }))
    .where("entitlement_id", "=", lic.entitlement_id)
    .where("period_start", "=", lic.period_start)
    .execute();
  if (lic.used + claims.count > lic.allowance) {
    await anomaly("quota_overrun", "alert", { used: lic.used + claims.count, allowance: lic.allowance });
  }
  await appendAudit(
    tx,
    {
      actor: principal.id,
      action: "usage.accept",
      outcome: "success",
      subject: r.deviceId,
      detail: { seq: claims.seq, count: claims.count, license: lic.jti },
    },
    now,
  );
  return { seq: claims.seq, status: "accepted" };
}

/**
 * Ingests a batch of usage reports, each on its own: in sequence order, idempotent (a repeat is
 * acknowledged, not counted twice), gaps and forks recorded as anomalies and not acknowledged.
 * Returns per-report results and the device's acknowledged head, so a client can resync.
 */
export async function ingestUsage(ctx: ServerContext, principal: Principal, tokens: string[]) {
  const decoded: (Decoded | ModelVaultError)[] = [];
  for (const t of tokens)
    decoded.push(
      await decode(ctx, principal, t).catch((e: unknown) =>
        isModelVaultError(e) ? e : new ModelVaultError("ERR_USAGE_INVALID"),
      ),
    );
  const order = decoded
    .map((d, i) => ({ d, i }))
    .sort(
      (a, b) =>
        (a.d instanceof ModelVaultError ? 0 : a.d.claims.seq) -
        (b.d instanceof ModelVaultError ? 0 : b.d.claims.seq),
    );
  const results: ReportResult[] = new Array(tokens.length);
  let rejected: ReportResult[] = [];
  // One transaction per batch: one commit (one fsync) instead of one per report.
  await withTransaction(ctx.db, async (tx) => {
    for (const { d, i } of order) {
      results[i] =
        d instanceof ModelVaultError
          ? { seq: null, status: "rejected", code: d.code }
          : await apply(tx, ctx, principal, d);
    }
    rejected = results.filter((x) => x.status === "rejected");
    for (const r of rejected) {
      const detail = { seq: r.seq, reason: r.code };
      await appendAudit(
        tx,
        { actor: principal.id, action: "usage.accept", outcome: "denied", subject: "-", detail },
        ctx.now(),
      );
    }
  });
  const accepted = results.filter((r) => r.status === "accepted").length;
  ctx.metrics.inc(
    "modelvault_usage_reports_total",
    "Usage reports by outcome.",
    { outcome: "accepted" },
    accepted,
  );
  ctx.metrics.inc(
    "modelvault_usage_reports_total",
    "Usage reports by outcome.",
    { outcome: "rejected" },
    rejected.length,
  );
  const deviceId = decoded.find((d): d is Decoded => !(d instanceof ModelVaultError))?.deviceId;
  const head = deviceId
    ? await ctx.db.kysely
        .selectFrom("devices")
        .select(["report_seq as seq", "report_head as hash"])
        .where("id", "=", deviceId)
        .executeTakeFirst()
    : undefined;
  return { results, head: head ?? null };
}
