import type { Hono } from "hono";
import { z } from "zod";
import { MAX_MANIFEST_BYTES } from "../../core/manifest-jws.js";
import { describeManifest } from "../catalog/describe-manifest.js";
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

/**
 * A sealed content key or trace key is a few hundred bytes; 4 KiB each leaves room for any JWE
 * header we accept.
 */
const MAX_SEALED_KEY_BYTES = 4 * 1024;
/**
 * Registration carries the largest manifest the format allows (1 MiB as a JWS: about 10,000
 * shards, far beyond multi-GB models) plus the sealed keys, so its limit is sized to that
 * rather than to the 64 KiB every other body gets.
 */
export const MAX_REGISTRATION_BYTES = MAX_MANIFEST_BYTES + 2 * MAX_SEALED_KEY_BYTES + 1024;

const registration = z.strictObject({
  manifest: z.string().max(MAX_MANIFEST_BYTES),
  contentKey: z.string().max(MAX_SEALED_KEY_BYTES),
  /** Traceable packages only: their trace-key.jwe (docs/TRACING.md). */
  traceKey: z.string().max(MAX_SEALED_KEY_BYTES).optional(),
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

  defineRoute(
    app,
    deps,
    { method: "GET", path: "/v1/models", permission: "models:read", schemas: { query: listQuery } },
    async (c, _, { query }) => {
      const rows = await ctx.db.kysely
        .selectFrom("models")
        .leftJoin("model_owners", "model_owners.model_id", "models.id")
        .select([
          "models.id",
          "models.version",
          "models.manifest_digest",
          "models.manifest_jws",
          "models.registered_by",
          "models.registered_at",
          "model_owners.principal_id as owner",
        ])
        .orderBy("models.registered_at")
        .orderBy("models.id")
        .orderBy("models.version")
        .offset(query.after)
        .limit(query.limit)
        .execute();
      return c.json({
        models: rows.map(({ manifest_jws, ...m }) => ({ ...m, ...describeManifest(manifest_jws) })),
      });
    },
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

  defineRoute(
    app,
    deps,
    {
      method: "GET",
      path: "/v1/models/retirements",
      permission: "models:read",
      schemas: { query: listQuery },
    },
    async (c, _, { query }) => {
      const retirements = await ctx.db.kysely
        .selectFrom("model_retirements")
        .selectAll()
        .orderBy("retired_at", "desc")
        .offset(query.after)
        .limit(query.limit)
        .execute();
      return c.json({ retirements });
    },
  );

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
        .innerJoin("principals", "principals.id", "entitlements.principal_id")
        .selectAll("entitlements")
        .select("principals.name as principal_name")
        .orderBy("entitlements.created_at")
        .orderBy("entitlements.id")
        .offset(query.after)
        .limit(query.limit)
        .execute();
      // This period's use of each quota (charged: reserved for open licenses, reported for settled ones).
      const now = ctx.now();
      const counters = rows.length
        ? await ctx.db.kysely
            .selectFrom("quota_counters")
            .selectAll()
            .where(
              "entitlement_id",
              "in",
              rows.map((r) => r.id),
            )
            .execute()
        : [];
      return c.json({
        entitlements: rows.map((e) => {
          const start = now - (now % e.period_seconds);
          const counter = counters.find((q) => q.entitlement_id === e.id && q.period_start === start);
          return {
            ...e,
            period_start: start,
            quota_reserved: counter?.reserved ?? 0,
            quota_used: counter?.used ?? 0,
          };
        }),
      });
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
