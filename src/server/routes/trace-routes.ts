import type { Hono } from "hono";
import { z } from "zod";
import { MAX_TRACE_SLOTS } from "../../core/tracing/trace-manifest.js";
import { defineRoute, type RouteDeps } from "../http/define-route.js";
import { runTrace } from "../tracing/run-trace.js";
import { modelId, versionParam } from "./schemas.js";

/**
 * One read per slot of at most 512: a number is at most ~25 JSON characters, so 32 KiB is
 * room enough. Per-model checks (one read per slot of this model, |r| ≤ 10⁶) are the domain's
 * (ERR_TRACE_READS_INVALID).
 */
const MAX_TRACE_BODY_BYTES = 32 * 1024;

/**
 * ε at most 10⁻²: a trace is an accusation, and a caller free to raise ε could shop for one.
 * The erasure threshold stays where a read is clearly one variant ([0.2, 0.9]). Both are
 * recorded in the audit entry with the digests of the reads and of the leaked file.
 */
export const traceBody = z.strictObject({
  reads: z.array(z.number()).min(1).max(MAX_TRACE_SLOTS),
  epsilon: z.number().gt(0).max(1e-2).default(1e-3),
  erase: z.number().min(0.2).max(0.9).default(0.5),
  leakSha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
});

/** Leak tracing (docs/TRACING.md): a publisher for its own models, an auditor for any. */
export function traceRoutes(app: Hono, deps: RouteDeps): void {
  const { ctx } = deps;
  defineRoute(
    app,
    deps,
    {
      method: "POST",
      path: "/v1/models/:model/versions/:version/traces",
      permission: "models:trace",
      schemas: {
        params: z.strictObject({ model: modelId, version: versionParam }),
        body: traceBody,
        maxBodyBytes: MAX_TRACE_BODY_BYTES,
      },
    },
    async (c, me, { params, body }) =>
      c.json(await runTrace(ctx, me, { id: params.model, version: params.version }, body)),
  );
}
