import type { Hono } from "hono";
import { sql } from "kysely";
import { ModelVaultError } from "../../core/errors.js";
import { changeEntitlement } from "../entitlements/change.js";
import { defineRoute, type RouteDeps } from "../http/define-route.js";
import {
  deviceQuery,
  entitlementChange,
  idParams,
  licenseQuery,
  listQuery,
  tokenIdParams,
} from "./schemas.js";

/** What a device row shows: never its keys. */
const DEVICE_COLUMNS = [
  "devices.id",
  "devices.principal_id",
  "devices.first_seen",
  "devices.last_seen",
  "devices.revoked_at",
  "devices.report_seq",
  "devices.report_last_to",
] as const;

const LICENSE_COLUMNS = [
  "jti",
  "entitlement_id",
  "principal_id",
  "device_id",
  "model_id",
  "model_version",
  "issued_at",
  "expires_at",
  "offline_until",
  "allowance",
  "used",
  "last_report_at",
  "released_at",
  "revoked_at",
] as const;

/** Read views licensors and auditors share: devices, licenses, one entitlement; and changing one. */
export function inventoryRoutes(app: Hono, deps: RouteDeps): void {
  const { ctx } = deps;
  const db = ctx.db.kysely;

  defineRoute(
    app,
    deps,
    { method: "GET", path: "/v1/devices", permission: "devices:read", schemas: { query: deviceQuery } },
    async (c, _, { query }) => {
      let q = db.selectFrom("devices").innerJoin("principals", "principals.id", "devices.principal_id");
      if (query.q) {
        // The schema allows no % (an "_" in an id matches any one character: harmless here).
        const like = `${query.q}%`;
        q = q.where((eb) =>
          eb.or([
            eb("devices.id", "like", like),
            eb("devices.principal_id", "like", like),
            eb(sql`lower(principals.name)`, "like", `%${like.toLowerCase()}`),
          ]),
        );
      }
      if (query.status === "active") q = q.where("devices.revoked_at", "is", null);
      if (query.status === "revoked") q = q.where("devices.revoked_at", "is not", null);
      const rows = await q
        .select([...DEVICE_COLUMNS, "principals.name as principal_name"])
        .orderBy("devices.last_seen", "desc")
        .orderBy("devices.id")
        .offset(query.after)
        .limit(query.limit)
        .execute();
      return c.json({ devices: rows });
    },
  );

  defineRoute(
    app,
    deps,
    { method: "GET", path: "/v1/devices/summary", permission: "devices:read" },
    async (c) => {
      const now = ctx.now();
      const count = async (q: { executeTakeFirst(): Promise<{ n: number | string | bigint } | undefined> }) =>
        Number((await q.executeTakeFirst())?.n ?? 0);
      const all = db.selectFrom("devices").select((eb) => eb.fn.countAll().as("n"));
      return c.json({
        devices: await count(all),
        revoked: await count(all.where("revoked_at", "is not", null)),
        seenToday: await count(all.where("revoked_at", "is", null).where("last_seen", ">=", now - 86400)),
        openLicenses: await count(
          db
            .selectFrom("licenses")
            .select((eb) => eb.fn.countAll().as("n"))
            .where("released_at", "is", null)
            .where("revoked_at", "is", null)
            .where("usable_until", ">", now),
        ),
      });
    },
  );

  defineRoute(
    app,
    deps,
    {
      method: "GET",
      path: "/v1/devices/:id",
      permission: "devices:read",
      schemas: { params: tokenIdParams },
    },
    async (c, _, { params }) => {
      const device = await db
        .selectFrom("devices")
        .innerJoin("principals", "principals.id", "devices.principal_id")
        .select([...DEVICE_COLUMNS, "principals.name as principal_name"])
        .where("devices.id", "=", params.id)
        .executeTakeFirst();
      if (!device) throw new ModelVaultError("ERR_NOT_FOUND", "no such device");
      const slots = await db
        .selectFrom("entitlement_devices")
        .innerJoin("entitlements", "entitlements.id", "entitlement_devices.entitlement_id")
        .select([
          "entitlements.id",
          "entitlements.model_id",
          "entitlement_devices.added_at",
          "entitlements.revoked_at",
        ])
        .where("entitlement_devices.device_id", "=", params.id)
        .execute();
      return c.json({ device, entitlements: slots });
    },
  );

  defineRoute(
    app,
    deps,
    {
      method: "GET",
      path: "/v1/devices/:id/usage",
      permission: "devices:read",
      schemas: { params: tokenIdParams, query: listQuery },
    },
    async (c, _, { params, query }) => {
      const device = await db
        .selectFrom("devices")
        .select("id")
        .where("id", "=", params.id)
        .executeTakeFirst();
      if (!device) throw new ModelVaultError("ERR_NOT_FOUND", "no such device");
      const reports = await db
        .selectFrom("usage_reports")
        .select(["seq", "hash", "prev", "license_jti", "count", "window_from", "window_to", "received_at"])
        .where("device_id", "=", params.id)
        .where("seq", ">", query.after)
        .orderBy("seq")
        .limit(query.limit)
        .execute();
      return c.json({ reports });
    },
  );

  defineRoute(
    app,
    deps,
    { method: "GET", path: "/v1/licenses", permission: "licenses:read", schemas: { query: licenseQuery } },
    async (c, _, { query }) => {
      let q = db.selectFrom("licenses").select(LICENSE_COLUMNS);
      if (query.device) q = q.where("device_id", "=", query.device);
      if (query.entitlement) q = q.where("entitlement_id", "=", query.entitlement);
      if (query.open === true)
        q = q
          .where("released_at", "is", null)
          .where("revoked_at", "is", null)
          .where("usable_until", ">", ctx.now());
      const licenses = await q
        .orderBy("issued_at", "desc")
        .orderBy("jti")
        .offset(query.after)
        .limit(query.limit)
        .execute();
      return c.json({ licenses });
    },
  );

  defineRoute(
    app,
    deps,
    {
      method: "GET",
      path: "/v1/entitlements/:id",
      permission: "entitlements:read",
      schemas: { params: idParams },
    },
    async (c, _, { params }) => {
      const entitlement = await db
        .selectFrom("entitlements")
        .selectAll()
        .where("id", "=", params.id)
        .executeTakeFirst();
      if (!entitlement) throw new ModelVaultError("ERR_NOT_FOUND", "no such entitlement");
      const now = ctx.now();
      const periodStart = now - (now % entitlement.period_seconds);
      const counter = await db
        .selectFrom("quota_counters")
        .select(["reserved", "used"])
        .where("entitlement_id", "=", params.id)
        .where("period_start", "=", periodStart)
        .executeTakeFirst();
      const devices = await db
        .selectFrom("entitlement_devices")
        .innerJoin("devices", "devices.id", "entitlement_devices.device_id")
        .select(["devices.id", "entitlement_devices.added_at", "devices.last_seen", "devices.revoked_at"])
        .where("entitlement_devices.entitlement_id", "=", params.id)
        .orderBy("entitlement_devices.added_at")
        .limit(1000)
        .execute();
      return c.json({
        entitlement,
        period: { start: periodStart, reserved: counter?.reserved ?? 0, used: counter?.used ?? 0 },
        devices,
      });
    },
  );

  defineRoute(
    app,
    deps,
    {
      method: "PUT",
      path: "/v1/entitlements/:id",
      permission: "entitlements:write",
      schemas: { params: idParams, body: entitlementChange },
    },
    async (c, me, { params, body }) =>
      c.json({ id: params.id, changed: await changeEntitlement(ctx, me.id, params.id, body) }),
  );
}
