import type { Hono } from "hono";
import { z } from "zod";
import { importAgreementKey } from "../../core/cek-wrap.js";
import { isModelVaultError, ModelVaultError } from "../../core/errors.js";
import { jwkThumbprint } from "../../core/jwk.js";
import { verifyDpop } from "../auth/dpop-verify.js";
import { defineRoute, type RouteDeps } from "../http/define-route.js";
import { issueLicense, recordDenial } from "../policy/issue-license.js";
import { ingestUsage, MAX_REPORT_BYTES, MAX_REPORTS_PER_BATCH } from "../usage/ingest-usage.js";
import { jwkPublic, modelId, version } from "./schemas.js";

const licenseBody = z.strictObject({
  model: z.strictObject({ id: modelId, version }),
  manifestDigest: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  agreementKey: jwkPublic,
});

const usageBody = z.strictObject({
  reports: z.array(z.string().max(MAX_REPORT_BYTES)).min(1).max(MAX_REPORTS_PER_BATCH),
});

/** Client routes: license issue/renew (DPoP-bound) and usage reports. */
export function licenseRoutes(app: Hono, deps: RouteDeps): void {
  const { ctx, limiter } = deps;

  defineRoute(
    app,
    deps,
    { method: "POST", path: "/v1/licenses", permission: "licenses:request", schemas: { body: licenseBody } },
    async (c, principal, { body }) => {
      // An off-curve ECDH key is bad input: 400 before the proof's replay entry, the device or
      // a denial is written (the invalid-curve attack, checklist C9).
      await importAgreementKey(body.agreementKey);
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
        if (isModelVaultError(e) && e.code !== "ERR_DPOP_NONCE_REQUIRED" && e.status < 500) {
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
    { method: "POST", path: "/v1/usage", permission: "usage:report", schemas: { body: usageBody } },
    async (c, principal, { body }) => {
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
}
