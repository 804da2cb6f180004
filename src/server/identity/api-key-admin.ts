import type { Kysely } from "kysely";
import { ModelVaultError } from "../../core/errors.js";
import { appendAudit } from "../audit/audit-log.js";
import { generateApiKey } from "../auth/api-keys.js";
import { PRIVILEGED_ROLES } from "../auth/permissions.js";
import type { ServerContext } from "../context.js";
import { withTransaction } from "../db/open-database.js";
import type { Database } from "../db/schema.js";
import { recordAnomaly } from "../monitoring/anomalies.js";
import { revokeAllKeys } from "./principals.js";

async function insertKey(
  tx: Kysely<Database>,
  ctx: ServerContext,
  actor: string,
  principalId: string,
  action: "api-key.create" | "api-key.rotate",
): Promise<{ id: string; token: string }> {
  const key = generateApiKey();
  await tx
    .insertInto("api_keys")
    .values({
      id: key.id,
      principal_id: principalId,
      secret_hash: key.secretHash,
      created_at: ctx.now(),
      revoked_at: null,
    })
    .execute();
  await appendAudit(
    tx,
    { actor, action, outcome: "success", subject: principalId, detail: { keyId: key.id } },
    ctx.now(),
  );
  return { id: key.id, token: key.token };
}

/**
 * An admin issues an API key to another principal (the token is returned once and stored only
 * as a hash). Separation of duties: only to a principal that holds no active key (onboarding,
 * or recovery after its keys were revoked), so an admin can never quietly hold a second key next
 * to an auditor's, licensor's or publisher's and act as them. A key for a privileged principal
 * is recorded as an anomaly for auditors.
 */
export async function createApiKey(
  ctx: ServerContext,
  actor: string,
  principalId: string,
): Promise<{ id: string; token: string }> {
  return withTransaction(ctx.db, async (tx) => {
    // Serialise key issuance per principal (SQLite holds the write lock already).
    let q = tx.selectFrom("principals").select("id").where("id", "=", principalId);
    if (ctx.db.dialect === "postgres") q = q.forUpdate();
    if (!(await q.executeTakeFirst())) throw new ModelVaultError("ERR_NOT_FOUND", "no such principal");
    const active = await tx
      .selectFrom("api_keys")
      .select("id")
      .where("principal_id", "=", principalId)
      .where("revoked_at", "is", null)
      .executeTakeFirst();
    if (active) {
      throw new ModelVaultError(
        "ERR_KEY_HOLDER_ACTIVE",
        "this principal already holds an active API key: it rotates its own keys (POST /v1/me/api-keys)",
      );
    }
    const roles = (
      await tx.selectFrom("principal_roles").select("role").where("principal_id", "=", principalId).execute()
    ).map((r) => r.role);
    const key = await insertKey(tx, ctx, actor, principalId, "api-key.create");
    const privileged = roles.filter((r) => PRIVILEGED_ROLES.includes(r));
    if (privileged.length > 0 && actor !== "bootstrap") {
      await recordAnomaly(
        tx,
        {
          kind: "privileged_key_issued",
          severity: "warning",
          principalId,
          detail: { by: actor, roles: privileged, keyId: key.id },
        },
        ctx.now(),
        ctx.metrics,
      );
    }
    return key;
  });
}

/** A principal issues itself a new key, optionally revoking all its others (rotation). */
export async function rotateOwnKey(
  ctx: ServerContext,
  principalId: string,
  revokeOthers: boolean,
): Promise<{ id: string; token: string; revoked: number }> {
  return withTransaction(ctx.db, async (tx) => {
    const revoked = revokeOthers ? await revokeAllKeys(tx, principalId, ctx.now()) : 0;
    const key = await insertKey(tx, ctx, principalId, principalId, "api-key.rotate");
    return { ...key, revoked };
  });
}

/** Revokes one API key: any key by an admin, or the caller's own (`owner`). */
export async function revokeApiKey(
  ctx: ServerContext,
  actor: string,
  keyId: string,
  owner?: string,
): Promise<void> {
  await withTransaction(ctx.db, async (tx) => {
    let q = tx
      .updateTable("api_keys")
      .set({ revoked_at: ctx.now() })
      .where("id", "=", keyId)
      .where("revoked_at", "is", null);
    if (owner !== undefined) q = q.where("principal_id", "=", owner);
    const r = await q.executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) throw new ModelVaultError("ERR_NOT_FOUND", "no such active API key");
    await appendAudit(tx, { actor, action: "api-key.revoke", outcome: "success", subject: keyId }, ctx.now());
  });
}
