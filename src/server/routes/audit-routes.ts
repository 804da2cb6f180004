import type { Hono } from "hono";
import { z } from "zod";
import { defineRoute, type RouteDeps } from "../http/define-route.js";
import { acknowledgeAnomaly } from "../monitoring/acknowledge.js";
import { usageSeries } from "../usage/usage-series.js";
import { anomalyQuery, listQuery, newestFirst, numericIdParams, seriesQuery } from "./schemas.js";

/** Longest usage series one request may ask for: a year of days, or 40 days of hours. */
const MAX_POINTS = 1000;

/** Auditor routes: the audit log, checkpoints, usage and anomalies (read), and acknowledging an anomaly. */
export function auditRoutes(app: Hono, deps: RouteDeps): void {
  const { ctx } = deps;
  const db = ctx.db.kysely;
  const schemas = { query: listQuery };

  defineRoute(
    app,
    deps,
    {
      method: "GET",
      path: "/v1/audit",
      permission: "audit:read",
      schemas: { query: listQuery.extend({ before: newestFirst.shape.before }) },
    },
    async (c, _, { query }) => {
      // `before`: newest first, for browsing; otherwise oldest first from `after` (verification, export).
      const entries =
        query.before !== undefined
          ? await db
              .selectFrom("audit_log")
              .selectAll()
              .where("seq", "<", query.before)
              .orderBy("seq", "desc")
              .limit(query.limit)
              .execute()
          : await db
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
    { method: "GET", path: "/v1/audit/checkpoints", permission: "audit:read", schemas },
    async (c, _, { query }) => {
      return c.json({
        checkpoints: await db
          .selectFrom("audit_checkpoints")
          .selectAll()
          .where("size", ">", query.after)
          .orderBy("size")
          .limit(query.limit)
          .execute(),
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
    { method: "GET", path: "/v1/usage/series", permission: "usage:read", schemas: { query: seriesQuery } },
    async (c, _, { query }) => {
      const to = query.to ?? ctx.now() + 1;
      const from = Math.max(query.from ?? to - 30 * 86400, to - MAX_POINTS * query.bucket);
      const points = await usageSeries(ctx.db, { ...query, from, to });
      return c.json({ from, to, bucket: query.bucket, points });
    },
  );

  defineRoute(
    app,
    deps,
    { method: "GET", path: "/v1/anomalies", permission: "anomalies:read", schemas: { query: anomalyQuery } },
    async (c, _, { query }) => {
      let q = db.selectFrom("anomalies").selectAll();
      if (query.kind) q = q.where("kind", "=", query.kind);
      if (query.device) q = q.where("device_id", "=", query.device);
      if (query.open === true) q = q.where("acknowledged_at", "is", null);
      if (query.open === false) q = q.where("acknowledged_at", "is not", null);
      // `before`: newest first; otherwise oldest first from `after` (the original listing).
      q =
        query.before !== undefined
          ? q.where("id", "<", query.before).orderBy("id", "desc")
          : q.where("id", ">", query.after ?? 0).orderBy("id");
      const rows = await q.limit(query.limit).execute();
      return c.json({ anomalies: rows.map((a) => ({ ...a, detail: JSON.parse(a.detail) })) });
    },
  );

  defineRoute(
    app,
    deps,
    {
      method: "POST",
      path: "/v1/anomalies/:id/acknowledge",
      permission: "anomalies:acknowledge",
      schemas: { params: numericIdParams, body: z.strictObject({ note: z.string().min(1).max(500) }) },
    },
    async (c, me, { params, body }) => c.json(await acknowledgeAnomaly(ctx, me.id, params.id, body.note)),
  );
}
