import { randomBytes } from "node:crypto";
import type { Hono } from "hono";
import { z } from "zod";
import { openContentKey } from "../../core/content-key-jwe.js";
import { manifestDigest } from "../../core/digest.js";
import { ModelVaultError } from "../../core/errors.js";
import type { EcJwk } from "../../core/jwk.js";
import { verifyManifest } from "../../core/manifest-jws.js";
import { appendAudit } from "../audit/audit-log.js";
import { withTransaction } from "../db/open-database.js";
import { defineRoute, type RouteDeps } from "../http/define-route.js";
import { readJson } from "../http/read-json.js";
import { kekContext } from "../policy/kek-context.js";
import { readQuery } from "./query.js";
import { id, listQuery, version } from "./schemas.js";

const DAY = 86400;
const entitlementBody = z
  .strictObject({
    principalId: id,
    modelId: id,
    minVersion: version.default(1),
    maxVersion: version.nullable().default(null),
    scopes: z
      .array(z.enum(["infer", "offline"]))
      .min(1)
      .max(2),
    quota: z.number().int().min(1).max(1e12),
    periodSeconds: z
      .number()
      .int()
      .min(60)
      .max(366 * DAY),
    licenseAllowance: z.number().int().min(1).max(1e12).optional(),
    maxDevices: z.number().int().min(1).max(100_000),
    licenseTtlSeconds: z.number().int().min(30).max(DAY).default(900),
    offlineSeconds: z
      .number()
      .int()
      .min(0)
      .max(90 * DAY)
      .default(0),
    reportGraceSeconds: z
      .number()
      .int()
      .min(30)
      .max(30 * DAY)
      .optional(),
    expiresAt: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  })
  .refine((e) => e.maxVersion === null || e.maxVersion >= e.minVersion, {
    path: ["maxVersion"],
    message: "must be >= minVersion",
  })
  .refine((e) => e.offlineSeconds === 0 || e.scopes.includes("offline"), {
    path: ["offlineSeconds"],
    message: "needs the offline scope",
  });

/** Publisher and licensor routes: model registration, entitlements, revocations. */
export function catalogRoutes(app: Hono, deps: RouteDeps): void {
  const { ctx } = deps;

  defineRoute(
    app,
    deps,
    { method: "POST", path: "/v1/models", permission: "models:register" },
    async (c, me) => {
      const body = await readJson(
        c,
        z.strictObject({ manifest: z.string().max(1024 * 1024), contentKey: z.string().max(8192) }),
        ctx.options.maxBodyBytes,
      );
      const keys = await ctx.db.kysely.selectFrom("publisher_keys").select("jwk").execute();
      const { manifest, publisherKid } = await verifyManifest(
        body.manifest,
        keys.map((k) => JSON.parse(k.jwk) as EcJwk),
      );
      const envelope = await openContentKey(body.contentKey, ctx.keys.registration.privateJwk, {
        modelId: manifest.model.id,
        modelVersion: manifest.model.version,
        contentKeyId: manifest.contentKeyId,
      });
      const row = {
        id: manifest.model.id,
        version: manifest.model.version,
        content_key_id: manifest.contentKeyId,
      };
      const wrapped = await ctx.keys.kek.encrypt(envelope.key, kekContext(row));
      envelope.key.fill(0);
      const digest = await manifestDigest(body.manifest);
      await withTransaction(ctx.db, async (tx) => {
        const exists = await tx
          .selectFrom("models")
          .select("id")
          .where("id", "=", row.id)
          .where("version", "=", row.version)
          .executeTakeFirst();
        if (exists)
          throw new ModelVaultError(
            "ERR_CONFLICT",
            `model ${row.id} version ${row.version} is already registered`,
          );
        await tx
          .insertInto("models")
          .values({
            ...row,
            manifest_digest: digest,
            manifest_jws: body.manifest.trim(),
            wrapped_cek: wrapped,
            kek_id: ctx.keys.kek.id,
            registered_by: me.id,
            registered_at: ctx.now(),
          })
          .execute();
        await appendAudit(
          tx,
          {
            actor: me.id,
            action: "model.register",
            outcome: "success",
            subject: `${row.id}@${row.version}`,
            detail: { publisherKid, digest },
          },
          ctx.now(),
        );
      });
      return c.json({ id: row.id, version: row.version, manifestDigest: digest }, 201);
    },
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
    { method: "POST", path: "/v1/entitlements", permission: "entitlements:write" },
    async (c, me) => {
      const e = await readJson(c, entitlementBody, ctx.options.maxBodyBytes);
      if (e.expiresAt <= ctx.now())
        throw new ModelVaultError("ERR_REQUEST_INVALID", 'field "expiresAt": must be in the future', {
          path: "expiresAt",
        });
      const eid = `e_${randomBytes(9).toString("base64url")}`;
      await withTransaction(ctx.db, async (tx) => {
        const p = await tx
          .selectFrom("principals")
          .select("id")
          .where("id", "=", e.principalId)
          .executeTakeFirst();
        if (!p) throw new ModelVaultError("ERR_NOT_FOUND", "no such principal");
        await tx
          .insertInto("entitlements")
          .values({
            id: eid,
            principal_id: e.principalId,
            model_id: e.modelId,
            min_version: e.minVersion,
            max_version: e.maxVersion,
            scopes: [...new Set(e.scopes)].join(" "),
            quota: e.quota,
            period_seconds: e.periodSeconds,
            license_allowance: Math.min(e.licenseAllowance ?? e.quota, e.quota),
            max_devices: e.maxDevices,
            devices_used: 0,
            license_ttl_seconds: e.licenseTtlSeconds,
            offline_seconds: e.offlineSeconds,
            report_grace_seconds: e.reportGraceSeconds ?? 2 * e.licenseTtlSeconds,
            expires_at: e.expiresAt,
            revoked_at: null,
            created_by: me.id,
            created_at: ctx.now(),
          })
          .execute();
        await appendAudit(
          tx,
          { actor: me.id, action: "entitlement.grant", outcome: "success", subject: eid, detail: { ...e } },
          ctx.now(),
        );
      });
      return c.json({ id: eid }, 201);
    },
  );

  defineRoute(
    app,
    deps,
    { method: "GET", path: "/v1/entitlements", permission: "entitlements:read" },
    async (c) => {
      const q = readQuery(c, listQuery);
      const rows = await ctx.db.kysely
        .selectFrom("entitlements")
        .selectAll()
        .orderBy("created_at")
        .offset(q.after)
        .limit(q.limit)
        .execute();
      return c.json({ entitlements: rows });
    },
  );

  const revoke = (
    path: string,
    permission: "entitlements:write" | "devices:revoke" | "licenses:revoke",
    action: string,
    apply: (
      tx: Parameters<Parameters<typeof withTransaction>[1]>[0],
      target: string,
      now: number,
    ) => Promise<number>,
  ) =>
    defineRoute(app, deps, { method: "POST", path, permission }, async (c, me) => {
      const target = z
        .string()
        .regex(/^[A-Za-z0-9_-]{1,128}$/)
        .parse(c.req.param("id"));
      await withTransaction(ctx.db, async (tx) => {
        const n = await apply(tx, target, ctx.now());
        if (n === 0) throw new ModelVaultError("ERR_NOT_FOUND", "nothing to revoke");
        await appendAudit(tx, { actor: me.id, action, outcome: "success", subject: target }, ctx.now());
      });
      return c.json({ id: target, revoked: true });
    });

  revoke(
    "/v1/entitlements/:id/revoke",
    "entitlements:write",
    "entitlement.revoke",
    async (tx, target, now) => {
      const r = await tx
        .updateTable("entitlements")
        .set({ revoked_at: now })
        .where("id", "=", target)
        .where("revoked_at", "is", null)
        .executeTakeFirst();
      await tx
        .updateTable("licenses")
        .set({ revoked_at: now })
        .where("entitlement_id", "=", target)
        .where("revoked_at", "is", null)
        .execute();
      return Number(r.numUpdatedRows);
    },
  );
  revoke("/v1/devices/:id/revoke", "devices:revoke", "device.revoke", async (tx, target, now) => {
    const r = await tx
      .updateTable("devices")
      .set({ revoked_at: now })
      .where("id", "=", target)
      .where("revoked_at", "is", null)
      .executeTakeFirst();
    await tx
      .updateTable("licenses")
      .set({ revoked_at: now })
      .where("device_id", "=", target)
      .where("revoked_at", "is", null)
      .execute();
    return Number(r.numUpdatedRows);
  });
  revoke("/v1/licenses/:id/revoke", "licenses:revoke", "license.revoke", async (tx, target, now) => {
    const r = await tx
      .updateTable("licenses")
      .set({ revoked_at: now })
      .where("jti", "=", target)
      .where("revoked_at", "is", null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows);
  });
}
