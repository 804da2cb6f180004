import { randomBytes } from "node:crypto";
import { SignJWT } from "jose";
import { CEK_WRAP_ALG, cekWrapInfo, wrapContentKeyForDevice } from "../../core/cek-wrap.js";
import { ModelVaultError } from "../../core/errors.js";
import type { EcJwk } from "../../core/jwk.js";
import { LICENSE_AUDIENCE, type LicenseClaims } from "../../core/license-token.js";
import { TYP } from "../../core/token-types.js";
import { appendAudit } from "../audit/audit-log.js";
import type { VerifiedDpop } from "../auth/dpop-verify.js";
import { refuseRevokedPublisherKey } from "../catalog/publisher-keys.js";
import type { Principal, ServerContext } from "../context.js";
import { withTransaction } from "../db/open-database.js";
import { recordAnomaly } from "../monitoring/anomalies.js";
import { assignCodeword, findModelTrace } from "../tracing/codewords.js";
import { licenseTraceClaim, openTraceSecret } from "../tracing/license-keys.js";
import {
  admitDevice,
  claimDeviceSlot,
  findEntitlement,
  previousCovered,
  refuseRevokedLicense,
} from "./admission.js";
import { kekContext } from "./kek-context.js";
import { refund, reserveAllowance, settleDevice, settleExpired } from "./quota.js";

export interface LicenseRequest {
  model: { id: string; version: number };
  manifestDigest: string;
  agreementKey: EcJwk;
}

/**
 * Issues (or renews) a license: model and digest, entitlement, device, device limit, revoked
 * licenses, usage reported for the previous license, quota (after settling what expired); then
 * the device's codeword of a traceable model, the license row and its audit entry, all in one
 * transaction; then the signed JWT carrying the content key (and a traceable model's selected
 * slot keys) wrapped to the device's ECDH key.
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
  if (!model) {
    const retired = await ctx.db.kysely
      .selectFrom("model_retirements")
      .select("retired_at")
      .where("model_id", "=", req.model.id)
      .where("version", "=", req.model.version)
      .executeTakeFirst();
    throw new ModelVaultError(retired ? "ERR_MODEL_RETIRED" : "ERR_MODEL_NOT_FOUND");
  }
  if (model.manifest_digest !== req.manifestDigest) throw new ModelVaultError("ERR_MANIFEST_DIGEST_MISMATCH");
  // Read at every issue and renewal: a revocation stops a running model at its next renewal.
  await refuseRevokedPublisherKey(ctx.db.kysely, model.publisher_kid);
  // A lapsed manifest gets no license; a live one none that outlasts it (offline included).
  if (model.expires_at !== null && model.expires_at <= now)
    throw new ModelVaultError("ERR_MANIFEST_EXPIRED", "the manifest's signed validity has passed", {
      expires: model.expires_at,
    });
  const validUntil = model.expires_at ?? Number.MAX_SAFE_INTEGER;
  const jti = randomBytes(16).toString("base64url");
  // Crypto happens outside the transaction: SQLite has one writer, so keep it short.
  const cek = await ctx.keys.kek.decrypt(model.wrapped_cek, kekContext(model));
  const wrap = await wrapContentKeyForDevice(
    cek,
    req.agreementKey,
    cekWrapInfo(jti, model.id, model.version),
  );
  cek.fill(0);
  const trace = await findModelTrace(ctx.db.kysely, model);
  // Opened before the transaction, like the content key: a KEK that cannot decrypt it fails the
  // request before a license row is committed.
  const traceSecret = trace && (await openTraceSecret(ctx, model, trace));
  const issued = await withTransaction(ctx.db, async (tx) => {
    const ent = await findEntitlement(tx, principal.id, req.model, now);
    await admitDevice(tx, principal, dpop, now);
    const slotSince = await claimDeviceSlot(tx, ent, dpop.jkt, now);
    await refuseRevokedLicense(tx, ent, dpop.jkt, slotSince);
    // License rows first, counters after (the lock order every writer keeps).
    const covered = await previousCovered(tx, ent, dpop.jkt, now);
    const settled = await settleExpired(tx, ctx.db, ent, now);
    if (covered) settled.push(...(await settleDevice(tx, ent, dpop.jkt, now)));
    await refund(tx, settled);
    const periodStart = now - (now % ent.period_seconds);
    const allowance = await reserveAllowance(tx, ctx.db, ent, periodStart);
    const codeword =
      trace &&
      (await assignCodeword(
        tx,
        trace,
        { device: dpop.jkt, principal: principal.id, entitlement: ent.id },
        now,
      ));
    const exp = Math.min(now + ent.license_ttl_seconds, ent.expires_at, validUntil);
    const scopes = ent.scopes.split(" ");
    const offlineUntil =
      scopes.includes("offline") && ent.offline_seconds > 0
        ? Math.min(exp + ent.offline_seconds, ent.expires_at, validUntil)
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
        usable_until: offlineUntil ?? exp,
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
    return {
      ent,
      exp,
      allowance,
      periodEnd: periodStart + ent.period_seconds,
      scopes,
      offlineUntil,
      codeword,
    };
  }).catch((e: unknown) => {
    traceSecret?.fill(0);
    throw e;
  });
  let trc: LicenseClaims["trc"];
  try {
    if (trace && traceSecret && issued.codeword)
      trc = await licenseTraceClaim(traceSecret, model, trace, issued.codeword, jti, req.agreementKey);
  } finally {
    traceSecret?.fill(0);
  }

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
    ...(trc ? { trc } : {}),
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
