import type { Hono } from "hono";
import { z } from "zod";
import { isModelVaultError, ModelVaultError } from "../../core/errors.js";
import { jwkThumbprint } from "../../core/jwk.js";
import { verifyDpop } from "../auth/dpop-verify.js";
import { defineRoute, type RouteDeps } from "../http/define-route.js";
import { readJson } from "../http/read-json.js";
import { issueLicense, recordDenial } from "../policy/issue-license.js";
import { ingestUsage, MAX_REPORT_BYTES, MAX_REPORTS_PER_BATCH } from "../usage/ingest-usage.js";
import { readQuery } from "./query.js";
import { id, jwkPublic, listQuery, version } from "./schemas.js";

const licenseBody = z.strictObject({
  model: z.strictObject({ id, version }),
  manifestDigest: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  agreementKey: jwkPublic,
});

const usageBody = z.strictObject({
  reports: z.array(z.string().max(MAX_REPORT_BYTES)).min(1).max(MAX_REPORTS_PER_BATCH),
});

/** Client routes: license issue/renew (DPoP-bound), usage reports, and the caller's own records. */
export function licenseRoutes(app: Hono, deps: RouteDeps): void {
  const { ctx, limiter } = deps;

  defineRoute(
    app,
    deps,
    { method: "POST", path: "/v1/licenses", permission: "licenses:request" },
    async (c, principal) => {
      const body = await readJson(c, licenseBody, ctx.options.maxBodyBytes);
      let deviceId: string | undefined;
      try {
        const dpop = await verifyDpop(
          c.req.header("dpop"),
          { method: "POST", url: `${ctx.issuer}/v1/licenses` },
          {
            db: ctx.db.kysely,
            nonces: ctx.nonces,
            now: ctx.now(),
            windowSeconds: ctx.options.dpopWindowSeconds,
          },
        );
        deviceId = dpop.jkt;
        if ((await jwkThumbprint(body.agreementKey)) !== dpop.akt) {
          throw new ModelVaultError("ERR_DPOP_INVALID", "agreementKey does not match the proof's akt", {
            reason: "akt mismatch",
          });
        }
        const { token, claims } = await issueLicense(ctx, principal, dpop, body);
        ctx.metrics.inc("modelvault_licenses_total", "License requests by outcome and reason.", {
          outcome: "issued",
          reason: "ok",
        });
        return c.json(
          {
            license: token,
            expiresAt: claims.exp,
            offlineUntil: claims.offline_until ?? null,
            allowance: claims.quota.allowance,
          },
          200,
          { "DPoP-Nonce": ctx.nonces.issue(), "Cache-Control": "no-store" },
        );
      } catch (e) {
        if (isModelVaultError(e) && e.code !== "ERR_DPOP_NONCE_REQUIRED") {
          ctx.metrics.inc("modelvault_licenses_total", "License requests by outcome and reason.", {
            outcome: "denied",
            reason: e.code,
          });
          const burst =
            limiter.hit(`deny:${principal.id}`, 1e9) ===
            (ctx.options.anomalyThresholds.denialBurstPerMinute ?? 10) + 1;
          await recordDenial(ctx, principal.id, deviceId, e.code, burst);
        }
        throw e;
      }
    },
  );

  defineRoute(
    app,
    deps,
    { method: "POST", path: "/v1/usage", permission: "usage:report" },
    async (c, principal) => {
      const body = await readJson(c, usageBody, ctx.options.maxBodyBytes);
      const { results, head } = await ingestUsage(ctx, principal, body.reports);
      const allRejected = results.every((r) => r.status === "rejected");
      const first = results[0];
      if (allRejected && first?.code) {
        const e = new ModelVaultError(first.code);
        return c.json({ error: e.toJSON(), results, head }, e.status as never);
      }
      return c.json({ results, head });
    },
  );

  defineRoute(
    app,
    deps,
    { method: "GET", path: "/v1/me/licenses", permission: "self:read" },
    async (c, principal) => {
      const q = readQuery(c, listQuery);
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
        .where("issued_at", ">=", q.after)
        .orderBy("issued_at")
        .limit(q.limit)
        .execute();
      return c.json({ licenses: rows });
    },
  );

  defineRoute(
    app,
    deps,
    { method: "GET", path: "/v1/me/usage", permission: "self:read" },
    async (c, principal) => {
      const q = readQuery(c, listQuery);
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
        .where("seq", ">", q.after)
        .orderBy("seq")
        .limit(q.limit)
        .execute();
      return c.json({ usage: rows });
    },
  );
}
