import { randomBytes } from "node:crypto";
import { ModelVaultError } from "../../core/errors.js";
import { appendAudit } from "../audit/audit-log.js";
import type { ServerContext } from "../context.js";
import { withTransaction } from "../db/open-database.js";
import type { EntitlementGrant } from "../routes/schemas.js";

/**
 * Without a report covering the previous license, a renewal is refused once the previous
 * license is this old (docs/PROTOCOL.md, "Renewal"). Small: an honest runtime reports before
 * every renewal; the grace only covers a reload right after a load.
 */
export const DEFAULT_REPORT_GRACE_SECONDS = 60;

/** A licensor grants a principal the use of a model (versions, scopes, quota, devices, lifetimes). */
export async function grantEntitlement(
  ctx: ServerContext,
  actor: string,
  e: EntitlementGrant,
): Promise<{ id: string }> {
  if (e.expiresAt <= ctx.now())
    throw new ModelVaultError("ERR_REQUEST_INVALID", 'field "expiresAt": must be in the future', {
      path: "expiresAt",
    });
  const eid = `e_${randomBytes(9).toString("base64url")}`;
  await withTransaction(ctx.db, async (tx) => {
    const p = await tx
      .selectFrom("principals")
      .select("id")
      .where("id", "=", e.principalId)
      .executeTakeFirst();
    if (!p) throw new ModelVaultError("ERR_NOT_FOUND", "no such principal");
    await tx
      .insertInto("entitlements")
      .values({
        id: eid,
        principal_id: e.principalId,
        model_id: e.modelId,
        min_version: e.minVersion,
        max_version: e.maxVersion,
        scopes: [...new Set(e.scopes)].join(" "),
        quota: e.quota,
        period_seconds: e.periodSeconds,
        license_allowance: Math.min(e.licenseAllowance ?? e.quota, e.quota),
        max_devices: e.maxDevices,
        devices_used: 0,
        license_ttl_seconds: e.licenseTtlSeconds,
        offline_seconds: e.offlineSeconds,
        report_grace_seconds: e.reportGraceSeconds ?? DEFAULT_REPORT_GRACE_SECONDS,
        expires_at: e.expiresAt,
        revoked_at: null,
        created_by: actor,
        created_at: ctx.now(),
      })
      .execute();
    await appendAudit(
      tx,
      { actor, action: "entitlement.grant", outcome: "success", subject: eid, detail: { ...e } },
      ctx.now(),
    );
  });
  return { id: eid };
}
