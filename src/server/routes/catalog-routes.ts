import type { Hono } from "hono";
import { z } from "zod";
import { MAX_MANIFEST_BYTES } from "../../core/manifest-jws.js";
import { revokePublisherKey } from "../catalog/publisher-keys.js";
import { registerModel } from "../catalog/register-model.js";
import { grantEntitlement } from "../entitlements/grant.js";
import { releaseDevice, revokeDevice, revokeEntitlement, revokeLicense } from "../entitlements/revoke.js";
import { defineRoute, type RouteDeps } from "../http/define-route.js";
import {
  entitlementBody,
  id,
  idParams,
  kidParams,
  listQuery,
  reasonBody,
  tokenId,
  tokenIdParams,
} from "./schemas.js";

/** A sealed content key is a few hundred bytes; 8 KiB leaves room for any JWE header we accept. */
const MAX_CONTENT_KEY_BYTES = 8 * 1024;
/**
 * Registration carries the largest manifest the format allows (1 MiB as a JWS: about 10,000
 * shards, far beyond multi-GB models) plus the sealed key, so its limit is sized to that
 * rather than to the 64 KiB every other body gets.
 */
export const MAX_REGISTRATION_BYTES = MAX_MANIFEST_BYTES + MAX_CONTENT_KEY_BYTES + 1024;

const registration = z.strictObject({
  manifest: z.string().max(MAX_MANIFEST_BYTES),
  contentKey: z.string().max(MAX_CONTENT_KEY_BYTES),
});

/** Publisher and licensor routes: model registration, entitlements, revocations, device release. */
export function catalogRoutes(app: Hono, deps: RouteDeps): void {
  const { ctx } = deps;

  defineRoute(
    app,
    deps,
    {
      method: "POST",
      path: "/v1/models",
      permission: "models:register",
      schemas: { body: registration, maxBodyBytes: MAX_REGISTRATION_BYTES },
    },
    async (c, me, { body }) => c.json(await registerModel(ctx, me.id, body), 201),
  );

  // A publisher revokes its own key (compromised, or rotated out) without waiting for an admin.
  defineRoute(
    app,
    deps,
    {
      method: "POST",
      path: "/v1/publisher-keys/:kid/revoke",
      permission: "publisher-keys:revoke-own",
      schemas: { params: kidParams, body: reasonBody },
    },
    async (c, me, { params, body }) =>
      c.json(await revokePublisherKey(ctx, me.id, params.kid, body.reason, me.id)),
  );

  defineRoute(app, deps, { method: "GET", path: "/v1/models", permission: "models:read" }, async (c) => {
    const rows = await ctx.db.kysely
      .selectFrom("models")
      .select(["id", "version", "manifest_digest", "registered_by", "registered_at"])
      .orderBy("registered_at")
      .execute();
    return c.json({ models: rows });
  });

  defineRoute(
    app,
    deps,
    {
      method: "POST",
      path: "/v1/entitlements",
      permission: "entitlements:write",
      schemas: { body: entitlementBody },
    },
    async (c, me, { body }) => c.json(await grantEntitlement(ctx, me.id, body), 201),
  );

  defineRoute(
    app,
    deps,
    {
      method: "GET",
      path: "/v1/entitlements",
      permission: "entitlements:read",
      schemas: { query: listQuery },
    },
    async (c, _, { query }) => {
      const rows = await ctx.db.kysely
        .selectFrom("entitlements")
        .selectAll()
        .orderBy("created_at")
        .offset(query.after)
        .limit(query.limit)
        .execute();
      return c.json({ entitlements: rows });
    },
  );

  defineRoute(
    app,
    deps,
    {
      method: "POST",
      path: "/v1/entitlements/:id/revoke",
      permission: "entitlements:write",
      schemas: { params: idParams },
    },
    async (c, me, { params }) => c.json(await revokeEntitlement(ctx, me.id, params.id)),
  );
  defineRoute(
    app,
    deps,
    {
      method: "POST",
      path: "/v1/devices/:id/revoke",
      permission: "devices:revoke",
      schemas: { params: tokenIdParams },
    },
    async (c, me, { params }) => c.json(await revokeDevice(ctx, me.id, params.id)),
  );
  defineRoute(
    app,
    deps,
    {
      method: "POST",
      path: "/v1/licenses/:id/revoke",
      permission: "licenses:revoke",
      schemas: { params: tokenIdParams },
    },
    async (c, me, { params }) => c.json(await revokeLicense(ctx, me.id, params.id)),
  );
  defineRoute(
    app,
    deps,
    {
      method: "POST",
      path: "/v1/entitlements/:id/devices/:device/release",
      permission: "devices:release",
      schemas: { params: z.strictObject({ id, device: tokenId }) },
    },
    async (c, me, { params }) => c.json(await releaseDevice(ctx, me.id, params.id, params.device)),
  );
}
