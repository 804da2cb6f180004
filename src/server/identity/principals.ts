import { randomBytes } from "node:crypto";
import type { Kysely } from "kysely";
import { ModelVaultError } from "../../core/errors.js";
import { appendAudit } from "../audit/audit-log.js";
import { checkRoleSet, PRIVILEGED_ROLES } from "../auth/permissions.js";
import type { ServerContext } from "../context.js";
import { withTransaction } from "../db/open-database.js";
import type { Database } from "../db/schema.js";

export interface NewPrincipal {
  name: string;
  roles: readonly string[];
  oidc?: { issuer: string; subject: string } | undefined;
}

/** Creates a principal with roles (separation of duties checked) and returns its id. */
export async function createPrincipal(
  ctx: ServerContext,
  actor: string,
  body: NewPrincipal,
): Promise<{ id: string }> {
  checkRoleSet(body.roles);
  const pid = `p_${randomBytes(9).toString("base64url")}`;
  await withTransaction(ctx.db, async (tx) => {
    await tx
      .insertInto("principals")
      .values({
        id: pid,
        name: body.name,
        oidc_issuer: body.oidc?.issuer ?? null,
        oidc_subject: body.oidc?.subject ?? null,
        created_at: ctx.now(),
        disabled_at: null,
      })
      .execute();
    for (const role of new Set(body.roles))
      await tx.insertInto("principal_roles").values({ principal_id: pid, role }).execute();
    await appendAudit(
      tx,
      {
        actor,
        action: "principal.create",
        outcome: "success",
        subject: pid,
        detail: { name: body.name, roles: [...body.roles] },
      },
      ctx.now(),
    );
  });
  return { id: pid };
}

/** Revokes every active API key of a principal; returns how many. */
export async function revokeAllKeys(tx: Kysely<Database>, principalId: string, now: number): Promise<number> {
  const r = await tx
    .updateTable("api_keys")
    .set({ revoked_at: now })
    .where("principal_id", "=", principalId)
    .where("revoked_at", "is", null)
    .executeTakeFirst();
  return Number(r.numUpdatedRows);
}

/**
 * Replaces a principal's roles. Separation of duties: no conflicting pair, no admin changing
 * their own roles, and a principal that gains a privileged role loses its API keys, so a key an
 * admin minted while it was a client never carries the new role (docs/THREAT-MODEL.md).
 */
export async function setRoles(
  ctx: ServerContext,
  actor: string,
  target: string,
  roles: readonly string[],
): Promise<{ id: string; roles: string[]; keysRevoked: number }> {
  if (target === actor)
    throw new ModelVaultError("ERR_ROLE_CONFLICT", "an admin may not change their own roles");
  checkRoleSet(roles);
  return withTransaction(ctx.db, async (tx) => {
    const p = await tx.selectFrom("principals").select("id").where("id", "=", target).executeTakeFirst();
    if (!p) throw new ModelVaultError("ERR_NOT_FOUND", "no such principal");
    const before = (
      await tx.selectFrom("principal_roles").select("role").where("principal_id", "=", target).execute()
    ).map((r) => r.role);
    const gained = roles.filter((r) => !before.includes(r) && PRIVILEGED_ROLES.includes(r));
    const keysRevoked = gained.length > 0 ? await revokeAllKeys(tx, target, ctx.now()) : 0;
    await tx.deleteFrom("principal_roles").where("principal_id", "=", target).execute();
    for (const role of new Set(roles))
      await tx.insertInto("principal_roles").values({ principal_id: target, role }).execute();
    await appendAudit(
      tx,
      {
        actor,
        action: "role.change",
        outcome: "success",
        subject: target,
        detail: { roles: [...roles], keysRevoked },
      },
      ctx.now(),
    );
    return { id: target, roles: [...roles], keysRevoked };
  });
}
