import { randomBytes } from "node:crypto";
import type { Hono } from "hono";
import { z } from "zod";
import { ModelVaultError } from "../../core/errors.js";
import { jwkThumbprint } from "../../core/jwk.js";
import { appendAudit } from "../audit/audit-log.js";
import { writeCheckpoint } from "../audit/checkpoints.js";
import { generateApiKey } from "../auth/api-keys.js";
import { checkRoleSet, ROLES } from "../auth/permissions.js";
import type { ServerContext } from "../context.js";
import { withTransaction } from "../db/open-database.js";
import { defineRoute, type RouteDeps } from "../http/define-route.js";
import { readJson } from "../http/read-json.js";
import { rotateSigningKeys } from "../keys/server-keys.js";
import { readQuery } from "./query.js";
import { id, jwkPublic, listQuery } from "./schemas.js";

const roles = z.array(z.enum(ROLES)).max(ROLES.length);
const principalBody = z.strictObject({
  name: z.string().min(1).max(200),
  roles: roles.default([]),
  oidc: z.strictObject({ issuer: z.string().url().max(500), subject: z.string().min(1).max(500) }).optional(),
});

/** Creates a principal with roles (separation of duties checked) and returns its id. */
export async function createPrincipal(
  ctx: ServerContext,
  actor: string,
  body: z.infer<typeof principalBody>,
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
        detail: { name: body.name, roles: body.roles },
      },
      ctx.now(),
    );
  });
  return { id: pid };
}

/** Issues an API key for a principal; the token is returned once and stored only as a hash. */
export async function createApiKey(
  ctx: ServerContext,
  actor: string,
  principalId: string,
): Promise<{ id: string; token: string }> {
  const key = generateApiKey();
  await withTransaction(ctx.db, async (tx) => {
    const p = await tx.selectFrom("principals").select("id").where("id", "=", principalId).executeTakeFirst();
    if (!p) throw new ModelVaultError("ERR_NOT_FOUND", "no such principal");
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
      {
        actor,
        action: "api-key.create",
        outcome: "success",
        subject: principalId,
        detail: { keyId: key.id },
      },
      ctx.now(),
    );
  });
  return { id: key.id, token: key.token };
}

/** Admin routes: principals, roles, API keys, publisher keys, signing-key rotation, checkpoints. */
export function adminRoutes(app: Hono, deps: RouteDeps): void {
  const { ctx } = deps;

  defineRoute(
    app,
    deps,
    { method: "POST", path: "/v1/admin/principals", permission: "principals:write" },
    async (c, me) => {
      const body = await readJson(c, principalBody, ctx.options.maxBodyBytes);
      return c.json(await createPrincipal(ctx, me.id, body), 201);
    },
  );

  defineRoute(
    app,
    deps,
    { method: "GET", path: "/v1/admin/principals", permission: "principals:read" },
    async (c) => {
      const q = readQuery(c, listQuery);
      const rows = await ctx.db.kysely
        .selectFrom("principals")
        .selectAll()
        .orderBy("created_at")
        .offset(q.after)
        .limit(q.limit)
        .execute();
      const roleRows = await ctx.db.kysely.selectFrom("principal_roles").selectAll().execute();
      return c.json({
        principals: rows.map((p) => ({
          ...p,
          roles: roleRows.filter((r) => r.principal_id === p.id).map((r) => r.role),
        })),
      });
    },
  );

  defineRoute(
    app,
    deps,
    { method: "PUT", path: "/v1/admin/principals/:id/roles", permission: "roles:write" },
    async (c, me) => {
      const target = id.parse(c.req.param("id"));
      const body = await readJson(c, z.strictObject({ roles }), ctx.options.maxBodyBytes);
      if (target === me.id)
        throw new ModelVaultError("ERR_ROLE_CONFLICT", "an admin may not change their own roles");
      checkRoleSet(body.roles);
      await withTransaction(ctx.db, async (tx) => {
        const p = await tx.selectFrom("principals").select("id").where("id", "=", target).executeTakeFirst();
        if (!p) throw new ModelVaultError("ERR_NOT_FOUND", "no such principal");
        await tx.deleteFrom("principal_roles").where("principal_id", "=", target).execute();
        for (const role of new Set(body.roles))
          await tx.insertInto("principal_roles").values({ principal_id: target, role }).execute();
        await appendAudit(
          tx,
          {
            actor: me.id,
            action: "role.change",
            outcome: "success",
            subject: target,
            detail: { roles: body.roles },
          },
          ctx.now(),
        );
      });
      return c.json({ id: target, roles: body.roles });
    },
  );

  defineRoute(
    app,
    deps,
    { method: "POST", path: "/v1/admin/principals/:id/api-keys", permission: "api-keys:write" },
    async (c, me) => {
      return c.json(await createApiKey(ctx, me.id, id.parse(c.req.param("id"))), 201);
    },
  );

  defineRoute(
    app,
    deps,
    { method: "DELETE", path: "/v1/admin/api-keys/:id", permission: "api-keys:write" },
    async (c, me) => {
      const keyId = id.parse(c.req.param("id"));
      await withTransaction(ctx.db, async (tx) => {
        const r = await tx
          .updateTable("api_keys")
          .set({ revoked_at: ctx.now() })
          .where("id", "=", keyId)
          .where("revoked_at", "is", null)
          .executeTakeFirst();
        if (Number(r.numUpdatedRows) === 0)
          throw new ModelVaultError("ERR_NOT_FOUND", "no such active API key");
        await appendAudit(
          tx,
          { actor: me.id, action: "api-key.revoke", outcome: "success", subject: keyId },
          ctx.now(),
        );
      });
      return c.json({ id: keyId, revoked: true });
    },
  );

  defineRoute(
    app,
    deps,
    { method: "POST", path: "/v1/admin/publisher-keys", permission: "publisher-keys:write" },
    async (c, me) => {
      const body = await readJson(
        c,
        z.strictObject({ jwk: jwkPublic, principalId: id.optional() }),
        ctx.options.maxBodyBytes,
      );
      const kid = await jwkThumbprint(body.jwk);
      await withTransaction(ctx.db, async (tx) => {
        await tx
          .insertInto("publisher_keys")
          .values({
            kid,
            jwk: JSON.stringify({ kty: "EC", crv: "P-256", x: body.jwk.x, y: body.jwk.y }),
            principal_id: body.principalId ?? null,
            created_at: ctx.now(),
          })
          .onConflict((oc) => oc.column("kid").doNothing())
          .execute();
        await appendAudit(
          tx,
          { actor: me.id, action: "publisher-key.add", outcome: "success", subject: kid },
          ctx.now(),
        );
      });
      return c.json({ kid }, 201);
    },
  );

  defineRoute(
    app,
    deps,
    { method: "POST", path: "/v1/admin/signing-keys/rotate", permission: "server-keys:rotate" },
    async (c, me) => {
      const rotated = await rotateSigningKeys(
        { dir: `${ctx.options.dataDir}/keys`, env: ctx.options.env },
        ctx.keys,
      );
      ctx.setKeys(rotated);
      await withTransaction(ctx.db, (tx) =>
        appendAudit(
          tx,
          {
            actor: me.id,
            action: "signing-key.rotate",
            outcome: "success",
            subject: rotated.current.kid,
            detail: { retired: rotated.retired.map((k) => k.kid) },
          },
          ctx.now(),
        ),
      );
      return c.json({
        current: rotated.current.kid,
        next: rotated.next.kid,
        retired: rotated.retired.map((k) => k.kid),
      });
    },
  );

  defineRoute(
    app,
    deps,
    { method: "POST", path: "/v1/audit/checkpoints", permission: "audit:checkpoint" },
    async (c) => {
      const cp = await withTransaction(ctx.db, (tx) =>
        writeCheckpoint(tx, ctx.keys.current, ctx.issuer, ctx.now()),
      );
      return c.json({ checkpoint: cp ?? null }, 201);
    },
  );
}
