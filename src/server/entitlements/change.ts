import { ModelVaultError } from "../../core/errors.js";
import { appendAudit } from "../audit/audit-log.js";
import type { ServerContext } from "../context.js";
import { withTransaction } from "../db/open-database.js";
import type { EntitlementChange } from "../routes/schemas.js";

const COLUMNS = {
  quota: "quota",
  licenseAllowance: "license_allowance",
  maxDevices: "max_devices",
  licenseTtlSeconds: "license_ttl_seconds",
  offlineSeconds: "offline_seconds",
  expiresAt: "expires_at",
} as const;

/**
 * A licensor changes an entitlement's limits or lifetimes. Licenses already issued keep theirs
 * until they renew (the next license follows the new values); lowering the device limit below the
 * devices holding slots frees none (release them). Audited with the values before and after.
 */
export async function changeEntitlement(
  ctx: ServerContext,
  actor: string,
  id: string,
  change: EntitlementChange,
): Promise<Record<string, number>> {
  const now = ctx.now();
  if (change.expiresAt !== undefined && change.expiresAt <= now)
    throw new ModelVaultError("ERR_REQUEST_INVALID", 'field "expiresAt": must be in the future', {
      path: "expiresAt",
    });
  return withTransaction(ctx.db, async (tx) => {
    let q = tx.selectFrom("entitlements").selectAll().where("id", "=", id);
    if (ctx.db.dialect === "postgres") q = q.forUpdate();
    const ent = await q.executeTakeFirst();
    if (!ent) throw new ModelVaultError("ERR_NOT_FOUND", "no such entitlement");
    if (ent.revoked_at !== null)
      throw new ModelVaultError("ERR_ENTITLEMENT_REVOKED", "a revoked entitlement cannot be changed");
    if ((change.offlineSeconds ?? 0) > 0 && !ent.scopes.split(" ").includes("offline"))
      throw new ModelVaultError("ERR_REQUEST_INVALID", 'field "offlineSeconds": needs the offline scope', {
        path: "offlineSeconds",
      });
    const before: Record<string, number> = {};
    const after: Record<string, number> = {};
    for (const [field, column] of Object.entries(COLUMNS)) {
      const value = change[field as keyof EntitlementChange];
      if (value === undefined) continue;
      before[field] = ent[column];
      after[field] = value;
    }
    // The per-license allowance never exceeds the quota (as at grant).
    const quota = after.quota ?? ent.quota;
    const allowance = Math.min(after.licenseAllowance ?? ent.license_allowance, quota);
    if (allowance !== ent.license_allowance) {
      before.licenseAllowance = ent.license_allowance;
      after.licenseAllowance = allowance;
    }
    await tx
      .updateTable("entitlements")
      .set(
        Object.fromEntries(
          Object.entries(after).map(([f, v]) => [COLUMNS[f as keyof typeof COLUMNS], v]),
        ) as Record<string, number>,
      )
      .where("id", "=", id)
      .execute();
    await appendAudit(
      tx,
      { actor, action: "entitlement.change", outcome: "success", subject: id, detail: { before, after } },
      now,
    );
    return after;
  });
}
