import { randomBytes } from "node:crypto";
import { SignJWT } from "jose";
import type { Kysely } from "kysely";
import { CEK_WRAP_ALG, cekWrapInfo, wrapContentKeyForDevice } from "../../core/cek-wrap.js";
import { ModelVaultError } from "../../core/errors.js";
import type { EcJwk } from "../../core/jwk.js";
import { LICENSE_AUDIENCE, type LicenseClaims } from "../../core/license-token.js";
import { TYP } from "../../core/token-types.js";
import { usageGenesis } from "../../core/usage-report.js";
import { appendAudit } from "../audit/audit-log.js";
import type { VerifiedDpop } from "../auth/dpop-verify.js";
import type { Principal, ServerContext } from "../context.js";
import { withTransaction } from "../db/open-database.js";
import type { Database } from "../db/schema.js";
import { recordAnomaly } from "../monitoring/anomalies.js";
import { kekContext } from "./kek-context.js";

export interface LicenseRequest {
  model: { id: string; version: number };
  manifestDigest: string;
  agreementKey: EcJwk;
}

type Entitlement = Database["entitlements"];

/** Picks the caller's usable entitlement, or throws the most specific reason there is none. */
async function findEntitlement(
  tx: Kysely<Database>,
  principalId: string,
  model: LicenseRequest["model"],
  now: number,
): Promise<Entitlement> {
  const rows = await tx
    .selectFrom("entitlements")
    .selectAll()
    .where("principal_id", "=", principalId)
    .where("model_id", "=", model.id)
    .where("min_version", "<=", model.version)
    .orderBy("created_at", "desc")
    .execute();
  const matching = rows.filter((e) => e.max_version === null || e.max_version >= model.version);
  const usable = matching.find(
    (e) => e.revoked_at === null && e.expires_at > now && e.scopes.split(" ").includes("infer"),
  );
  if (usable) return usable;
  if (matching.some((e) => e.revoked_at !== null)) throw new ModelVaultError("ERR_ENTITLEMENT_REVOKED");
  if (matching.some((e) => e.expires_at <= now)) throw new ModelVaultError("ERR_ENTITLEMENT_EXPIRED");
  throw new ModelVaultError("ERR_ENTITLEMENT_NOT_FOUND");
}

/** Registers the device (first use) and holds it to one principal; refuses revoked devices. */
async function admitDevice(
  tx: Kysely<Database>,
  principal: Principal,
  dpop: VerifiedDpop,
  now: number,
): Promise<void> {
  await tx
    .insertInto("devices")
    .values({
      id: dpop.jkt,
      principal_id: principal.id,
      signing_jwk: JSON.stringify(dpop.jwk),
      agreement_jkt: dpop.akt,
      first_seen: now,
      last_seen: now,
      revoked_at: null,
      report_seq: 0,
      report_head: await usageGenesis(dpop.jkt),
      report_last_to: 0,
    })
    .onConflict((oc) => oc.column("id").doNothing())
    .execute();
  const device = await tx
    .selectFrom("devices")
    .select(["principal_id", "revoked_at"])
    .where("id", "=", dpop.jkt)
    .executeTakeFirstOrThrow();
  if (device.revoked_at !== null) throw new ModelVaultError("ERR_DEVICE_REVOKED");
  if (device.principal_id !== principal.id)
    throw new ModelVaultError("ERR_DEVICE_REVOKED", "this device key belongs to another principal");
  await tx
    .updateTable("devices")
    .set({ last_seen: now, agreement_jkt: dpop.akt })
    .where("id", "=", dpop.jkt)
    .execute();
}

/** Adds the device to the entitlement unless that would pass max_devices (atomic counter). */
async function claimDeviceSlot(
  tx: Kysely<Database>,
  ent: Entitlement,
  deviceId: string,
  now: number,
): Promise<void> {
  const added = await tx
    .insertInto("entitlement_devices")
    .values({ entitlement_id: ent.id, device_id: deviceId, added_at: now })
    .onConflict((oc) => oc.columns(["entitlement_id", "device_id"]).doNothing())
    .executeTakeFirst();
  if (Number(added.numInsertedOrUpdatedRows ?? 0) === 0) return;
  const claimed = await tx
    .updateTable("entitlements")
    .set((eb) => ({ devices_used: eb("devices_used", "+", 1) }))
    .where("id", "=", ent.id)
    .where("devices_used", "<", ent.max_devices)
    .executeTakeFirst();
  if (Number(claimed.numUpdatedRows) === 0) throw new ModelVaultError("ERR_DEVICE_LIMIT");
}

/**
 * Returns the previous license's unused allowance to the quota, and refuses renewal while its
 * usage reports are overdue (issued longer than the grace period ago, nothing reported since).
 */
async function settlePrevious(
  tx: Kysely<Database>,
  ent: Entitlement,
  deviceId: string,
  now: number,
): Promise<void> {
  const previous = await tx
    .selectFrom("licenses")
    .selectAll()
    .where("device_id", "=", deviceId)
    .where("entitlement_id", "=", ent.id)
    .where("released_at", "is", null)
    .orderBy("issued_at", "desc")
    .execute();
  for (const [i, lic] of previous.entries()) {
    if (
      i === 0 &&
      lic.issued_at + ent.report_grace_seconds <= now &&
      (lic.last_report_at ?? 0) < lic.issued_at
    ) {
      throw new ModelVaultError("ERR_USAGE_OVERDUE");
    }
    const unused = Math.max(0, lic.allowance - lic.used);
    await tx
      .updateTable("quota_counters")
      .set((eb) => ({ reserved: eb("reserved", "-", unused) }))
      .where("entitlement_id", "=", ent.id)
      .where("period_start", "=", lic.period_start)
      .execute();
    await tx.updateTable("licenses").set({ released_at: now }).where("jti", "=", lic.jti).execute();
  }
}

/** Reserves min(per-license allowance, what is left) from this period's quota, atomically. */
async function reserveAllowance(
  tx: Kysely<Database>,
  ent: Entitlement,
  periodStart: number,
): Promise<number> {
  await tx
    .insertInto("quota_counters")
    .values({ entitlement_id: ent.id, period_start: periodStart, reserved: 0, used: 0 })
    .onConflict((oc) => oc.columns(["entitlement_id", "period_start"]).doNothing())
    .execute();
  for (let attempt = 0; attempt < 5; attempt++) {
    const counter = await tx
      .selectFrom("quota_counters")
      .select(["reserved", "used"])
      .where("entitlement_id", "=", ent.id)
      .where("period_start", "=", periodStart)
      .executeTakeFirstOrThrow();
    const left = ent.quota - Math.max(counter.reserved, counter.used);
    const allowance = Math.min(ent.license_allowance, left);
    if (allowance <= 0) throw new ModelVaultError("ERR_QUOTA_EXHAUSTED");
    const updated = await tx
      .updateTable("quota_counters")
      .set((eb) => ({ reserved: eb("reserved", "+", allowance) }))
      .where("entitlement_id", "=", ent.id)
      .where("period_start", "=", periodStart)
      .where("reserved", "=", counter.reserved)
      .executeTakeFirst();
    if (Number(updated.numUpdatedRows) === 1) return allowance;
  }
  throw new ModelVaultError("ERR_UNAVAILABLE", "quota counter contended; retry", { retryAfter: 1 });
}

/**
 * Issues (or renews) a license: model and digest, entitlement, device, device limit, overdue
 * reports, quota; then the license row and its audit entry, all in one transaction; then the
 * signed JWT carrying the content key wrapped to the device's ECDH key.
 */
export async function issueLicense(
  ctx: ServerContext,
  principal: Principal,
  dpop: VerifiedDpop,
  req: LicenseRequest,
): Promise<{ token: string; claims: LicenseClaims }> {
  const now = ctx.now();
  const model = await ctx.db.kysely
    .selectFrom("models")
    .selectAll()
    .where("id", "=", req.model.id)
    .where("version", "=", req.model.version)
    .executeTakeFirst();
  if (!model) throw new ModelVaultError("ERR_MODEL_NOT_FOUND");
  if (model.manifest_digest !== req.manifestDigest) throw new ModelVaultError("ERR_MANIFEST_DIGEST_MISMATCH");
  const jti = randomBytes(16).toString("base64url");
  // Crypto happens outside the transaction: SQLite has one writer, so keep it short.
  const cek = await ctx.keys.kek.decrypt(model.wrapped_cek, kekContext(model));
  const wrap = await wrapContentKeyForDevice(
    cek,
    req.agreementKey,
    cekWrapInfo(jti, model.id, model.version),
  );
  cek.fill(0);

  const issued = await withTransaction(ctx.db, async (tx) => {
    const ent = await findEntitlement(tx, principal.id, req.model, now);
    await admitDevice(tx, principal, dpop, now);
    await claimDeviceSlot(tx, ent, dpop.jkt, now);
    await settlePrevious(tx, ent, dpop.jkt, now);
    const periodStart = now - (now % ent.period_seconds);
    const allowance = await reserveAllowance(tx, ent, periodStart);
    const exp = Math.min(now + ent.license_ttl_seconds, ent.expires_at);
    const scopes = ent.scopes.split(" ");
    const offlineUntil =
      scopes.includes("offline") && ent.offline_seconds > 0
        ? Math.min(exp + ent.offline_seconds, ent.expires_at)
        : undefined;
    await tx
      .insertInto("licenses")
      .values({
        jti,
        entitlement_id: ent.id,
        principal_id: principal.id,
        device_id: dpop.jkt,
        model_id: model.id,
        model_version: model.version,
        issued_at: now,
        expires_at: exp,
        offline_until: offlineUntil ?? null,
        period_start: periodStart,
        allowance,
        used: 0,
        last_report_at: null,
        released_at: null,
        revoked_at: null,
      })
      .execute();
    await appendAudit(
      tx,
      {
        actor: principal.id,
        action: "license.issue",
        outcome: "success",
        subject: jti,
        detail: { device: dpop.jkt, model: `${model.id}@${model.version}`, allowance, exp },
      },
      now,
    );
    return { ent, exp, allowance, periodEnd: periodStart + ent.period_seconds, scopes, offlineUntil };
  });

  const claims: LicenseClaims = {
    iss: ctx.issuer,
    sub: principal.id,
    aud: LICENSE_AUDIENCE,
    jti,
    iat: now,
    nbf: now,
    exp: issued.exp,
    cnf: { jkt: dpop.jkt },
    akt: dpop.akt,
    mdl: { id: model.id, version: model.version, digest: model.manifest_digest },
    scope: issued.scopes.join(" "),
    quota: { allowance: issued.allowance, periodEnd: issued.periodEnd },
    ...(issued.offlineUntil !== undefined ? { offline_until: issued.offlineUntil } : {}),
    cek: { alg: CEK_WRAP_ALG, kid: model.content_key_id, epk: wrap.epk, wrapped: wrap.wrapped },
    ent: issued.ent.id,
  };
  const key = ctx.keys.current;
  const token = await new SignJWT(claims as never)
    .setProtectedHeader({ alg: "ES256", typ: TYP.license, kid: key.kid })
    .sign(key.privateKey);
  return { token, claims };
}

/** Records a refused license request: audit entry, metrics, and device-limit / denial-burst anomalies. */
export async function recordDenial(
  ctx: ServerContext,
  principalId: string,
  deviceId: string | undefined,
  code: string,
  burst: boolean,
): Promise<void> {
  const now = ctx.now();
  await withTransaction(ctx.db, async (tx) => {
    await appendAudit(
      tx,
      {
        actor: principalId,
        action: "license.issue",
        outcome: "denied",
        subject: deviceId ?? "-",
        detail: { reason: code },
      },
      now,
    );
    if (code === "ERR_DEVICE_LIMIT") {
      await recordAnomaly(
        tx,
        { kind: "device_limit", severity: "warning", principalId, deviceId: deviceId ?? null },
        now,
        ctx.metrics,
      );
    }
    if (burst)
      await recordAnomaly(
        tx,
        { kind: "denial_burst", severity: "alert", principalId, detail: { reason: code } },
        now,
        ctx.metrics,
      );
  });
}
