import type { Hono } from "hono";
import { defineRoute, type RouteDeps } from "../http/define-route.js";
import { listQuery } from "./schemas.js";

/** Auditor routes: read-only views of the audit log, checkpoints, usage and anomalies. */
export function auditRoutes(app: Hono, deps: RouteDeps): void {
  const { ctx } = deps;
  const db = ctx.db.kysely;
  const schemas = { query: listQuery };

  defineRoute(
    app,
    deps,
    { method: "GET", path: "/v1/audit", permission: "audit:read", schemas },
    async (c, _, { query }) => {
      const entries = await db
        .selectFrom("audit_log")
        .selectAll()
        .where("seq", ">", query.after)
        .orderBy("seq")
        .limit(query.limit)
        .execute();
      return c.json({ entries });
    },
  );

  defineRoute(
    app,
    deps,
    { method: "GET", path: "/v1/audit/checkpoints", permission: "audit:read" },
    async (c) => {
      return c.json({
        checkpoints: await db.selectFrom("audit_checkpoints").selectAll().orderBy("size").execute(),
      });
    },
  );

  defineRoute(
    app,
    deps,
    { method: "GET", path: "/v1/usage", permission: "usage:read", schemas },
    async (c, _, { query }) => {
      const usage = await db
        .selectFrom("usage_reports")
        .selectAll()
        .orderBy("received_at")
        .orderBy("seq")
        .offset(query.after)
        .limit(query.limit)
        .execute();
      return c.json({ usage });
    },
  );

  defineRoute(
    app,
    deps,
    { method: "GET", path: "/v1/anomalies", permission: "anomalies:read", schemas },
    async (c, _, { query }) => {
      const rows = await db
        .selectFrom("anomalies")
        .selectAll()
        .where("id", ">", query.after)
        .orderBy("id")
        .limit(query.limit)
        .execute();
      return c.json({ anomalies: rows.map((a) => ({ ...a, detail: JSON.parse(a.detail) })) });
    },
  );
}
