import type { Kysely } from "kysely";
import { ModelVaultError } from "../../core/errors.js";
import { appendAudit } from "../audit/audit-log.js";
import type { ServerContext } from "../context.js";
import { withTransaction } from "../db/open-database.js";
import type { Database } from "../db/schema.js";

type Apply = (tx: Kysely<Database>, target: string, now: number) => Promise<number>;

/** Runs one revocation and its audit entry in one transaction; 404 when there was nothing to revoke. */
async function revoke(ctx: ServerContext, actor: string, action: string, target: string, apply: Apply) {
  await withTransaction(ctx.db, async (tx) => {
    const n = await apply(tx, target, ctx.now());
    if (n === 0) throw new ModelVaultError("ERR_NOT_FOUND", "nothing to revoke");
    await appendAudit(tx, { actor, action, outcome: "success", subject: target }, ctx.now());
  });
  return { id: target, revoked: true as const };
}

const revokeLicensesWhere = (
  tx: Kysely<Database>,
  column: "entitlement_id" | "device_id",
  id: string,
  now: number,
) =>
  tx
    .updateTable("licenses")
    .set({ revoked_at: now })
    .where(column, "=", id)
    .where("revoked_at", "is", null)
    .execute();

/** The entitlement and every license issued under it: renewals are refused from now on. */
export const revokeEntitlement = (ctx: ServerContext, actor: string, id: string) =>
  revoke(ctx, actor, "entitlement.revoke", id, async (tx, target, now) => {
    const r = await tx
      .updateTable("entitlements")
      .set({ revoked_at: now })
      .where("id", "=", target)
      .where("revoked_at", "is", null)
      .executeTakeFirst();
    await revokeLicensesWhere(tx, "entitlement_id", target, now);
    return Number(r.numUpdatedRows);
  });

/** The device (on every entitlement) and its licenses. */
export const revokeDevice = (ctx: ServerContext, actor: string, id: string) =>
  revoke(ctx, actor, "device.revoke", id, async (tx, target, now) => {
    const r = await tx
      .updateTable("devices")
      .set({ revoked_at: now })
      .where("id", "=", target)
      .where("revoked_at", "is", null)
      .executeTakeFirst();
    await revokeLicensesWhere(tx, "device_id", target, now);
    return Number(r.numUpdatedRows);
  });

/**
 * One license. Its device cannot renew on that entitlement afterwards (ERR_LICENSE_REVOKED)
 * until a licensor releases the device from the entitlement.
 */
export const revokeLicense = (ctx: ServerContext, actor: string, jti: string) =>
  revoke(ctx, actor, "license.revoke", jti, async (tx, target, now) => {
    const r = await tx
      .updateTable("licenses")
      .set({ revoked_at: now })
      .where("jti", "=", target)
      .where("revoked_at", "is", null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows);
  });

/**
 * Frees a device's slot in an entitlement's device limit (a lost or revoked device would hold
 * it forever otherwise). A device that comes back must claim a free slot again, and license
 * revocations from before the release no longer block it (a revoked *device* stays revoked).
 * Audited.
 */
export async function releaseDevice(
  ctx: ServerContext,
  actor: string,
  entitlementId: string,
  deviceId: string,
): Promise<{ entitlement: string; device: string; released: true }> {
  await withTransaction(ctx.db, async (tx) => {
    const removed = await tx
      .deleteFrom("entitlement_devices")
      .where("entitlement_id", "=", entitlementId)
      .where("device_id", "=", deviceId)
      .executeTakeFirst();
    if (Number(removed.numDeletedRows) === 0)
      throw new ModelVaultError("ERR_NOT_FOUND", "this device holds no slot in this entitlement");
    await tx
      .updateTable("entitlements")
      .set((eb) => ({ devices_used: eb("devices_used", "-", 1) }))
      .where("id", "=", entitlementId)
      .execute();
    await appendAudit(
      tx,
      {
        actor,
        action: "device.release",
        outcome: "success",
        subject: deviceId,
        detail: { entitlement: entitlementId },
      },
      ctx.now(),
    );
  });
  return { entitlement: entitlementId, device: deviceId, released: true };
}
