import type { Kysely } from "kysely";
import { ModelVaultError } from "../../core/errors.js";
import { appendAudit } from "../audit/audit-log.js";
import type { ServerContext } from "../context.js";
import { withTransaction } from "../db/open-database.js";
import type { Database } from "../db/schema.js";
import { requirePublisher } from "./require-publisher.js";

/**
 * Inside a registration's transaction: the first registrant of a model id owns it; anyone else
 * is refused (ERR_MODEL_NOT_OWNED). The insert-if-absent is atomic on both dialects, so two
 * publishers racing for a new id cannot both win.
 */
export async function claimModelId(
  tx: Kysely<Database>,
  modelId: string,
  principalId: string,
  now: number,
): Promise<void> {
  await tx
    .insertInto("model_owners")
    .values({ model_id: modelId, principal_id: principalId, assigned_by: principalId, assigned_at: now })
    .onConflict((oc) => oc.column("model_id").doNothing())
    .execute();
  const owner = await tx
    .selectFrom("model_owners")
    .select("principal_id")
    .where("model_id", "=", modelId)
    .executeTakeFirstOrThrow();
  if (owner.principal_id !== principalId)
    throw new ModelVaultError("ERR_MODEL_NOT_OWNED", `model id ${modelId} belongs to another publisher`, {
      modelId,
    });
}

/** An admin assigns (or transfers) a model id to a publisher; audited with the previous owner. */
export async function assignModelOwner(
  ctx: ServerContext,
  actor: string,
  modelId: string,
  principalId: string,
): Promise<{ modelId: string; owner: string; previous: string | null }> {
  return withTransaction(ctx.db, async (tx) => {
    await requirePublisher(tx, principalId);
    const before = await tx
      .selectFrom("model_owners")
      .select("principal_id")
      .where("model_id", "=", modelId)
      .executeTakeFirst();
    if (before)
      await tx
        .updateTable("model_owners")
        .set({ principal_id: principalId, assigned_by: actor, assigned_at: ctx.now() })
        .where("model_id", "=", modelId)
        .execute();
    else
      await tx
        .insertInto("model_owners")
        .values({ model_id: modelId, principal_id: principalId, assigned_by: actor, assigned_at: ctx.now() })
        .execute();
    const previous = before?.principal_id ?? null;
    await appendAudit(
      tx,
      {
        actor,
        action: "model.assign",
        outcome: "success",
        subject: modelId,
        detail: { owner: principalId, previous },
      },
      ctx.now(),
    );
    return { modelId, owner: principalId, previous };
  });
}

/**
 * An admin retires a registered version: it leaves the catalog (licenses for it are refused
 * with ERR_MODEL_RETIRED; its owner may register the version again, e.g. after someone else
 * squatted it) and is kept in model_retirements with who, when and why. Audited.
 */
export async function retireModelVersion(
  ctx: ServerContext,
  actor: string,
  modelId: string,
  version: number,
  reason: string,
): Promise<{ id: string; version: number; retired: true }> {
  await withTransaction(ctx.db, async (tx) => {
    const model = await tx
      .selectFrom("models")
      .select(["manifest_digest", "registered_by", "registered_at"])
      .where("id", "=", modelId)
      .where("version", "=", version)
      .executeTakeFirst();
    if (!model) throw new ModelVaultError("ERR_MODEL_NOT_FOUND", `no model ${modelId} version ${version}`);
    await tx
      .insertInto("model_retirements")
      .values({
        model_id: modelId,
        version,
        manifest_digest: model.manifest_digest,
        registered_by: model.registered_by,
        registered_at: model.registered_at,
        retired_by: actor,
        retired_at: ctx.now(),
        reason,
      })
      .execute();
    await tx.deleteFrom("models").where("id", "=", modelId).where("version", "=", version).execute();
    await appendAudit(
      tx,
      {
        actor,
        action: "model.retire",
        outcome: "success",
        subject: `${modelId}@${version}`,
        detail: { digest: model.manifest_digest, registeredBy: model.registered_by, reason },
      },
      ctx.now(),
    );
  });
  return { id: modelId, version, retired: true };
}
