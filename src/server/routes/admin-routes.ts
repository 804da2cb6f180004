import type { Hono } from "hono";
import { z } from "zod";
import { appendAudit } from "../audit/audit-log.js";
import { writeCheckpoint } from "../audit/checkpoints.js";
import { assignModelOwner, retireModelVersion } from "../catalog/model-owners.js";
import { addPublisherKey, revokePublisherKey } from "../catalog/publisher-keys.js";
import { withTransaction } from "../db/open-database.js";
import { defineRoute, type RouteDeps } from "../http/define-route.js";
import { createApiKey, revokeApiKey } from "../identity/api-key-admin.js";
import { createPrincipal, setRoles } from "../identity/principals.js";
import { rotateSigningKeys } from "../keys/server-keys.js";
import {
  id,
  idParams,
  jwkPublic,
  kidParams,
  listQuery,
  modelId,
  principalBody,
  reasonBody,
  roles,
  tokenIdParams,
  versionParam,
} from "./schemas.js";

/** Admin routes: principals, roles, API keys, publisher keys, model ids, signing-key rotation, checkpoints. */
export function adminRoutes(app: Hono, deps: RouteDeps): void {
  const { ctx } = deps;

  defineRoute(
    app,
    deps,
    {
      method: "POST",
      path: "/v1/admin/principals",
      permission: "principals:write",
      schemas: { body: principalBody },
    },
    async (c, me, { body }) => c.json(await createPrincipal(ctx, me.id, body), 201),
  );

  defineRoute(
    app,
    deps,
    {
      method: "GET",
      path: "/v1/admin/principals",
      permission: "principals:read",
      schemas: { query: listQuery },
    },
    async (c, _, { query }) => {
      const rows = await ctx.db.kysely
        .selectFrom("principals")
        .selectAll()
        .orderBy("created_at")
        .offset(query.after)
        .limit(query.limit)
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
    {
      method: "GET",
      path: "/v1/admin/principals/:id/api-keys",
      permission: "principals:read",
      schemas: { params: idParams, query: listQuery },
    },
    async (c, _, { params, query }) => {
      // Ids and dates only: a key's secret is shown once, at creation, and stored as a hash.
      const keys = await ctx.db.kysely
        .selectFrom("api_keys")
        .select(["id", "created_at", "revoked_at"])
        .where("principal_id", "=", params.id)
        .orderBy("created_at")
        .orderBy("id")
        .offset(query.after)
        .limit(query.limit)
        .execute();
      return c.json({ keys });
    },
  );

  defineRoute(
    app,
    deps,
    {
      method: "PUT",
      path: "/v1/admin/principals/:id/roles",
      permission: "roles:write",
      schemas: { params: idParams, body: z.strictObject({ roles }) },
    },
    async (c, me, { params, body }) => c.json(await setRoles(ctx, me.id, params.id, body.roles)),
  );

  defineRoute(
    app,
    deps,
    {
      method: "POST",
      path: "/v1/admin/principals/:id/api-keys",
      permission: "api-keys:write",
      schemas: { params: idParams },
    },
    async (c, me, { params }) => c.json(await createApiKey(ctx, me.id, params.id), 201),
  );

  defineRoute(
    app,
    deps,
    {
      method: "DELETE",
      path: "/v1/admin/api-keys/:id",
      permission: "api-keys:write",
      schemas: { params: tokenIdParams },
    },
    async (c, me, { params }) => {
      await revokeApiKey(ctx, me.id, params.id);
      return c.json({ id: params.id, revoked: true });
    },
  );

  defineRoute(
    app,
    deps,
    {
      method: "POST",
      path: "/v1/admin/publisher-keys",
      permission: "publisher-keys:write",
      schemas: { body: z.strictObject({ jwk: jwkPublic, principalId: id }) },
    },
    async (c, me, { body }) => c.json(await addPublisherKey(ctx, me.id, body.jwk, body.principalId), 201),
  );

  defineRoute(
    app,
    deps,
    {
      method: "POST",
      path: "/v1/admin/publisher-keys/:kid/revoke",
      permission: "publisher-keys:write",
      schemas: { params: kidParams, body: reasonBody },
    },
    async (c, me, { params, body }) => c.json(await revokePublisherKey(ctx, me.id, params.kid, body.reason)),
  );

  defineRoute(
    app,
    deps,
    {
      method: "PUT",
      path: "/v1/admin/models/:model/owner",
      permission: "models:assign",
      schemas: { params: z.strictObject({ model: modelId }), body: z.strictObject({ principalId: id }) },
    },
    async (c, me, { params, body }) =>
      c.json(await assignModelOwner(ctx, me.id, params.model, body.principalId)),
  );

  defineRoute(
    app,
    deps,
    {
      method: "POST",
      path: "/v1/admin/models/:model/versions/:version/retire",
      permission: "models:retire",
      schemas: {
        params: z.strictObject({ model: modelId, version: versionParam }),
        body: z.strictObject({ reason: z.string().min(1).max(500) }),
      },
    },
    async (c, me, { params, body }) =>
      c.json(await retireModelVersion(ctx, me.id, params.model, params.version, body.reason)),
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
