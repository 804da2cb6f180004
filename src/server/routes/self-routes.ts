import type { Hono } from "hono";
import { z } from "zod";
import { PERMISSIONS } from "../auth/permissions.js";
import { defineRoute, type RouteDeps } from "../http/define-route.js";
import { revokeApiKey, rotateOwnKey } from "../identity/api-key-admin.js";
import { listQuery, newestFirst, tokenIdParams } from "./schemas.js";

/** The caller's own records and keys: every query is filtered to the authenticated principal. */
export function selfRoutes(app: Hono, deps: RouteDeps): void {
  const { ctx } = deps;

  defineRoute(
    app,
    deps,
    { method: "GET", path: "/v1/me", permission: "self:profile" },
    async (c, principal) => {
      const row = await ctx.db.kysely
        .selectFrom("principals")
        .select("name")
        .where("id", "=", principal.id)
        .executeTakeFirst();
      return c.json({
        id: principal.id,
        name: row?.name ?? null,
        roles: principal.roles,
        via: principal.via,
        // What the caller may do: the console shows only these (the server checks every route anyway).
        permissions: Object.entries(PERMISSIONS)
          .filter(([, roles]) => (roles as readonly string[]).some((r) => principal.roles.includes(r)))
          .map(([p]) => p),
      });
    },
  );

  defineRoute(
    app,
    deps,
    { method: "GET", path: "/v1/me/audit", permission: "self:profile", schemas: { query: newestFirst } },
    async (c, principal, { query }) => {
      // Only entries of the caller's own actions, newest first: what its last action produced.
      let q = ctx.db.kysely.selectFrom("audit_log").selectAll().where("actor", "=", principal.id);
      if (query.before !== undefined) q = q.where("seq", "<", query.before);
      return c.json({ entries: await q.orderBy("seq", "desc").limit(query.limit).execute() });
    },
  );

  defineRoute(
    app,
    deps,
    { method: "GET", path: "/v1/me/licenses", permission: "self:read", schemas: { query: listQuery } },
    async (c, principal, { query }) => {
      const rows = await ctx.db.kysely
        .selectFrom("licenses")
        .select([
          "jti",
          "device_id",
          "model_id",
          "model_version",
          "issued_at",
          "expires_at",
          "offline_until",
          "allowance",
          "used",
          "revoked_at",
        ])
        .where("principal_id", "=", principal.id)
        .where("issued_at", ">=", query.after)
        .orderBy("issued_at")
        .limit(query.limit)
        .execute();
      return c.json({ licenses: rows });
    },
  );

  defineRoute(
    app,
    deps,
    { method: "GET", path: "/v1/me/usage", permission: "self:read", schemas: { query: listQuery } },
    async (c, principal, { query }) => {
      const rows = await ctx.db.kysely
        .selectFrom("usage_reports")
        .innerJoin("devices", "devices.id", "usage_reports.device_id")
        .select([
          "usage_reports.device_id",
          "seq",
          "license_jti",
          "count",
          "window_from",
          "window_to",
          "received_at",
        ])
        .where("devices.principal_id", "=", principal.id)
        .where("seq", ">", query.after)
        .orderBy("seq")
        .limit(query.limit)
        .execute();
      return c.json({ usage: rows });
    },
  );

  defineRoute(
    app,
    deps,
    {
      method: "POST",
      path: "/v1/me/api-keys",
      permission: "self:keys",
      schemas: { body: z.strictObject({ revokeOthers: z.boolean().default(false) }) },
    },
    async (c, principal, { body }) => c.json(await rotateOwnKey(ctx, principal.id, body.revokeOthers), 201),
  );

  defineRoute(
    app,
    deps,
    {
      method: "DELETE",
      path: "/v1/me/api-keys/:id",
      permission: "self:keys",
      schemas: { params: tokenIdParams },
    },
    async (c, principal, { params }) => {
      await revokeApiKey(ctx, principal.id, params.id, principal.id);
      return c.json({ id: params.id, revoked: true });
    },
  );
}
