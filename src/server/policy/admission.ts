/** The checks a license request passes before any quota is touched, each inside the issuing transaction. */
import type { Kysely } from "kysely";
import { ModelVaultError } from "../../core/errors.js";
import { usageGenesis } from "../../core/usage-report.js";
import type { VerifiedDpop } from "../auth/dpop-verify.js";
import type { Principal } from "../context.js";
import type { Database } from "../db/schema.js";

type Tx = Kysely<Database>;
export type Entitlement = Database["entitlements"];
type License = Database["licenses"];

/** Picks the caller's usable entitlement, or throws the most specific reason there is none. */
export async function findEntitlement(
  tx: Tx,
  principalId: string,
  model: { id: string; version: number },
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
export async function admitDevice(
  tx: Tx,
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

/**
 * Adds the device to the entitlement unless that would pass max_devices (atomic counter).
 * Returns when the device took its slot: license revocations from before then no longer count.
 */
export async function claimDeviceSlot(
  tx: Tx,
  ent: Entitlement,
  deviceId: string,
  now: number,
): Promise<number> {
  const added = await tx
    .insertInto("entitlement_devices")
    .values({ entitlement_id: ent.id, device_id: deviceId, added_at: now })
    .onConflict((oc) => oc.columns(["entitlement_id", "device_id"]).doNothing())
    .executeTakeFirst();
  if (Number(added.numInsertedOrUpdatedRows ?? 0) === 0) {
    const slot = await tx
      .selectFrom("entitlement_devices")
      .select("added_at")
      .where("entitlement_id", "=", ent.id)
      .where("device_id", "=", deviceId)
      .executeTakeFirstOrThrow();
    return slot.added_at;
  }
  const claimed = await tx
    .updateTable("entitlements")
    .set((eb) => ({ devices_used: eb("devices_used", "+", 1) }))
    .where("id", "=", ent.id)
    .where("devices_used", "<", ent.max_devices)
    .executeTakeFirst();
  if (Number(claimed.numUpdatedRows) === 0) throw new ModelVaultError("ERR_DEVICE_LIMIT");
  return now;
}

/**
 * A licensor revoked one of this device's licenses on this entitlement: the device renews no
 * more (the revocation would otherwise last only until the next renewal), until a licensor
 * releases the device from the entitlement.
 */
export async function refuseRevokedLicense(
  tx: Tx,
  ent: Entitlement,
  deviceId: string,
  since: number,
): Promise<void> {
  const revoked = await tx
    .selectFrom("licenses")
    .select("jti")
    .where("device_id", "=", deviceId)
    .where("entitlement_id", "=", ent.id)
    .where("revoked_at", "is not", null)
    .where("issued_at", ">=", since)
    .executeTakeFirst();
  if (revoked)
    throw new ModelVaultError("ERR_LICENSE_REVOKED", "a license of this device was revoked", {
      license: revoked.jti,
    });
}

/**
 * Usage before renewal: the device's newest open license on this entitlement must have had a
 * usage report accepted within the grace period before this request (the reference runtime
 * sends one right before renewing), unless that license is itself younger than the grace.
 * Returns whether it is covered, i.e. whether its unused allowance may return to the quota.
 */
export async function previousCovered(
  tx: Tx,
  ent: Entitlement,
  deviceId: string,
  now: number,
): Promise<boolean | undefined> {
  const previous: Pick<License, "jti" | "issued_at" | "last_report_at"> | undefined = await tx
    .selectFrom("licenses")
    .select(["jti", "issued_at", "last_report_at"])
    .where("device_id", "=", deviceId)
    .where("entitlement_id", "=", ent.id)
    .where("released_at", "is", null)
    .orderBy("issued_at", "desc")
    .limit(1)
    .executeTakeFirst();
  if (!previous) return undefined;
  const grace = ent.report_grace_seconds;
  if (previous.last_report_at !== null && previous.last_report_at >= now - grace) return true;
  if (previous.issued_at + grace > now) return false;
  throw new ModelVaultError(
    "ERR_USAGE_OVERDUE",
    "send a usage report for the previous license (data.license), then renew",
    { license: previous.jti },
  );
}
