import type { Context } from "hono";
import { ModelVaultError } from "../../core/errors.js";
import type { ServerContext } from "../context.js";

/** Seconds a client should wait before retrying, by database fault. */
const RETRY_AFTER = { unavailable: 5, full: 60, busy: 1 } as const;

/**
 * The one place errors become responses: a ModelVaultError keeps its code and status; a
 * database fault is 503 (unreachable, busy) or 507 (disk full) with Retry-After; anything else
 * is logged and answered as ERR_INTERNAL without a stack or message.
 */
export function errorResponse(ctx: ServerContext, c: Context, error: unknown): Response {
  let e: ModelVaultError;
  const fault = error instanceof ModelVaultError ? undefined : ctx.db.health.failed(error);
  if (error instanceof ModelVaultError) e = error;
  else if (fault === "unavailable")
    e = new ModelVaultError("ERR_DB_UNAVAILABLE", undefined, { retryAfter: RETRY_AFTER.unavailable });
  else if (fault === "full")
    e = new ModelVaultError("ERR_STORAGE_FULL", undefined, { retryAfter: RETRY_AFTER.full });
  else if (fault === "busy")
    e = new ModelVaultError("ERR_UNAVAILABLE", "database busy", { retryAfter: RETRY_AFTER.busy });
  else if (isUniqueViolation(error))
    // Two writers raced for the same key (or a duplicate slipped past a check): the caller's
    // input conflicts with what exists, never a server fault.
    e = new ModelVaultError("ERR_CONFLICT", "this resource already exists");
  else {
    ctx.logger.log("error", "unhandled error", {
      requestId: c.get("requestId" as never),
      error: String((error as Error)?.stack ?? error),
    });
    e = new ModelVaultError("ERR_INTERNAL");
  }
  // The request log names the refusal (who, what, when, where, and why: ASVS 16.2.1).
  c.set("errorCode" as never, e.code as never);
  const headers: Record<string, string> = { "Cache-Control": "no-store" };
  if (e.code === "ERR_DPOP_NONCE_REQUIRED") {
    headers["DPoP-Nonce"] = ctx.nonces.issue();
    headers["WWW-Authenticate"] =
      'DPoP error="use_dpop_nonce", error_description="Authorization server requires nonce in DPoP proof"';
  }
  if (e.code === "ERR_DPOP_INVALID" || e.code === "ERR_DPOP_REPLAY") {
    headers["WWW-Authenticate"] = 'DPoP error="invalid_dpop_proof", algs="ES256"';
  }
  if (e.code === "ERR_AUTH_REQUIRED" || e.code === "ERR_AUTH_INVALID")
    headers["WWW-Authenticate"] = 'Bearer realm="modelvault"';
  if (e.code === "ERR_RATE_LIMITED" || e.status === 503 || e.status === 507)
    headers["Retry-After"] = String(e.data.retryAfter ?? 1);
  return c.json({ error: e.toJSON() }, e.status as never, headers);
}

/** A unique or primary-key violation: SQLite's extended codes, PostgreSQL's SQLSTATE 23505. */
function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: string })?.code;
  return code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY" || code === "23505";
}
