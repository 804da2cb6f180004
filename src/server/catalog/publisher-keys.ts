import { ModelVaultError } from "../../core/errors.js";
import { type EcJwk, jwkThumbprint, publicJwk } from "../../core/jwk.js";
import { appendAudit } from "../audit/audit-log.js";
import type { ServerContext } from "../context.js";
import { withTransaction } from "../db/open-database.js";

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
    const roles = await tx
      .selectFrom("principal_roles")
      .select("role")
      .where("principal_id", "=", principalId)
      .execute();
    if (!roles.some((r) => r.role === "publisher"))
      throw new ModelVaultError("ERR_NOT_FOUND", "no publisher principal with this id", {
        path: "principalId",
      });
    const existing = await tx
      .selectFrom("publisher_keys")
      .select("principal_id")
      .where("kid", "=", kid)
      .executeTakeFirst();
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
