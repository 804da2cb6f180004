import type { Hono } from "hono";
import { defineRoute, type RouteDeps } from "../http/define-route.js";
import { readQuery } from "./query.js";
import { listQuery } from "./schemas.js";

/** Auditor routes: read-only views of the audit log, checkpoints, usage and anomalies. */
export function auditRoutes(app: Hono, deps: RouteDeps): void {
  const { ctx } = deps;
  const db = ctx.db.kysely;

  defineRoute(app, deps, { method: "GET", path: "/v1/audit", permission: "audit:read" }, async (c) => {
    const q = readQuery(c, listQuery);
    const entries = await db
      .selectFrom("audit_log")
      .selectAll()
      .where("seq", ">", q.after)
      .orderBy("seq")
      .limit(q.limit)
      .execute();
    return c.json({ entries });
  });

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

  defineRoute(app, deps, { method: "GET", path: "/v1/usage", permission: "usage:read" }, async (c) => {
    const q = readQuery(c, listQuery);
    const usage = await db
      .selectFrom("usage_reports")
      .selectAll()
      .orderBy("received_at")
      .orderBy("seq")
      .offset(q.after)
      .limit(q.limit)
      .execute();
    return c.json({ usage });
  });

  defineRoute(
    app,
    deps,
    { method: "GET", path: "/v1/anomalies", permission: "anomalies:read" },
    async (c) => {
      const q = readQuery(c, listQuery);
      const rows = await db
        .selectFrom("anomalies")
        .selectAll()
        .where("id", ">", q.after)
        .orderBy("id")
        .limit(q.limit)
        .execute();
      return c.json({ anomalies: rows.map((a) => ({ ...a, detail: JSON.parse(a.detail) })) });
    },
  );
}
