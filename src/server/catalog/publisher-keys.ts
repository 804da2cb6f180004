import type { Kysely } from "kysely";
import { ModelVaultError } from "../../core/errors.js";
import { type EcJwk, jwkThumbprint, publicJwk } from "../../core/jwk.js";
import { appendAudit } from "../audit/audit-log.js";
import type { ServerContext } from "../context.js";
import { withTransaction } from "../db/open-database.js";
import type { Database } from "../db/schema.js";
import { requirePublisher } from "./require-publisher.js";

/**
 * An admin trusts a publisher key for one publisher principal: manifests it signs can then be
 * registered by that principal only. Adding the same key for the same owner again changes
 * nothing; a key stored without an owner (before ownership existed) is assigned; a key that
 * belongs to someone else is refused (409), never silently reassigned.
 */
export async function addPublisherKey(
  ctx: ServerContext,
  actor: string,
  jwk: EcJwk,
  principalId: string,
): Promise<{ kid: string; owner: string }> {
  const kid = await jwkThumbprint(jwk);
  await withTransaction(ctx.db, async (tx) => {
    await requirePublisher(tx, principalId);
    const existing = await tx
      .selectFrom("publisher_keys")
      .select(["principal_id", "revoked_at"])
      .where("kid", "=", kid)
      .executeTakeFirst();
    // A revoked key stays revoked: adding it again must not look like it trusted it anew.
    if (existing && existing.revoked_at !== null)
      throw new ModelVaultError("ERR_PUBLISHER_KEY_REVOKED", "this publisher key was revoked", { kid });
    if (existing?.principal_id === principalId) return;
    if (existing && existing.principal_id !== null)
      throw new ModelVaultError("ERR_CONFLICT", "this publisher key belongs to another principal", { kid });
    if (existing)
      await tx
        .updateTable("publisher_keys")
        .set({ principal_id: principalId })
        .where("kid", "=", kid)
        .execute();
    else
      await tx
        .insertInto("publisher_keys")
        .values({
          kid,
          jwk: JSON.stringify(publicJwk(jwk)),
          principal_id: principalId,
          created_at: ctx.now(),
        })
        .execute();
    await appendAudit(
      tx,
      {
        actor,
        action: "publisher-key.add",
        outcome: "success",
        subject: kid,
        detail: { owner: principalId },
      },
      ctx.now(),
    );
  });
  return { kid, owner: principalId };
}

/**
 * Revokes a publisher key (compromised, or retired by its owner): from then on the server
 * registers no manifest it signed and licenses no version it signed, so a stolen key can no
 * longer put a model in front of devices through this server. `owner` limits the revocation to
 * that principal's own keys (a publisher revoking its key); an admin passes none. Another
 * principal's key answers as a missing one. Audited; revoking twice keeps the first record.
 */
export async function revokePublisherKey(
  ctx: ServerContext,
  actor: string,
  kid: string,
  reason: string,
  owner?: string,
): Promise<{ kid: string; revokedAt: number }> {
  return withTransaction(ctx.db, async (tx) => {
    const key = await tx
      .selectFrom("publisher_keys")
      .select(["principal_id", "revoked_at"])
      .where("kid", "=", kid)
      .executeTakeFirst();
    if (!key || (owner !== undefined && key.principal_id !== owner))
      throw new ModelVaultError("ERR_NOT_FOUND", "no such publisher key", { kid });
    if (key.revoked_at !== null) return { kid, revokedAt: key.revoked_at };
    const now = ctx.now();
    await tx
      .updateTable("publisher_keys")
      .set({ revoked_at: now, revoked_by: actor, revoked_reason: reason })
      .where("kid", "=", kid)
      .where("revoked_at", "is", null)
      .execute();
    await appendAudit(
      tx,
      {
        actor,
        action: "publisher-key.revoke",
        outcome: "success",
        subject: kid,
        detail: { owner: key.principal_id, reason },
      },
      now,
    );
    return { kid, revokedAt: now };
  });
}

/** Refuses a manifest signed by a revoked publisher key (registration and every license). */
export async function refuseRevokedPublisherKey(db: Kysely<Database>, kid: string | null): Promise<void> {
  if (kid === null) return;
  const key = await db
    .selectFrom("publisher_keys")
    .select("revoked_at")
    .where("kid", "=", kid)
    .executeTakeFirst();
  if (key?.revoked_at !== null && key?.revoked_at !== undefined)
    throw new ModelVaultError("ERR_PUBLISHER_KEY_REVOKED", "the manifest's publisher key was revoked", {
      kid,
    });
}
