import type { Context, Hono } from "hono";
import { ModelVaultError } from "../../core/errors.js";
import { appendAudit } from "../audit/audit-log.js";
import type { AuthThrottle } from "../auth/auth-throttle.js";
import { authenticate, claimedIdentity } from "../auth/authenticate.js";
import { hasPermission, type Permission } from "../auth/permissions.js";
import type { Principal, ServerContext } from "../context.js";
import { withTransaction } from "../db/open-database.js";
import { recordAnomaly } from "../monitoring/anomalies.js";
import type { ClientAddresses } from "./client-address.js";
import type { RateLimiter } from "./rate-limiter.js";
import { type RouteInput, type RouteSchemas, readRouteInput } from "./route-input.js";

export type Method = "GET" | "POST" | "PUT" | "DELETE";

/** Every route the server has, with the one permission it needs ("public" for none) and its inputs. */
export interface RouteSpec<S extends RouteSchemas = RouteSchemas> {
  method: Method;
  path: string;
  permission: Permission | "public";
  schemas?: S;
}

export const ROUTE_TABLE: RouteSpec[] = [];

export type Handler<S extends RouteSchemas = RouteSchemas> = (
  c: Context,
  principal: Principal,
  input: RouteInput<S>,
) => Promise<Response>;

export interface RouteDeps {
  ctx: ServerContext;
  limiter: RateLimiter;
  /** Failed authentications, counted in the database for every instance. */
  throttle: AuthThrottle;
  addresses: ClientAddresses;
}

export function socketAddress(c: Context): string | undefined {
  const incoming = (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming;
  return incoming?.socket?.remoteAddress;
}

/**
/**
 * Registers a route: authenticate (failed attempts throttled per client address and claimed
 * identity, never refusing others' valid credentials), check the route's single permission,
 * apply the per-principal rate limit, note request spikes, validate the inputs its schemas
 * declare, then run it.
 */
export function defineRoute<S extends RouteSchemas = Record<never, never>>(
  app: Hono,
  deps: RouteDeps,
  spec: RouteSpec<S>,
  handler: Handler<S>,
): void {
  // Every app built in one process defines the same routes: list each once.
  if (!ROUTE_TABLE.some((r) => r.method === spec.method && r.path === spec.path))
    ROUTE_TABLE.push(spec as RouteSpec);
  const { ctx, limiter, throttle } = deps;
  const input = (c: Context) => readRouteInput(c, spec.schemas ?? ({} as S), ctx.options.maxBodyBytes);
  const run = async (c: Context) => {
    if (spec.permission === "public")
      return handler(c, { id: "anonymous", roles: [], via: "api-key" }, await input(c));
    const authorization = c.req.header("authorization");
    const attempt = {
      address: deps.addresses.of(socketAddress(c), c.req.header("x-forwarded-for")),
      identity: claimedIdentity(authorization),
    };
    await throttle.admit(attempt);
    const principal = await authenticate(ctx, authorization);
    if (!principal) {
      await throttle.recordFailure(attempt);
      ctx.metrics.inc("modelvault_auth_failures_total", "Failed authentications.");
      ctx.logger.log("warn", "authentication failed", { route: spec.path, ip: attempt.address });
      throw new ModelVaultError("ERR_AUTH_INVALID");
    }
    c.set("principal" as never, principal.id as never);
    if (!hasPermission(principal.roles, spec.permission)) {
      await withTransaction(ctx.db, (tx) =>
        appendAudit(
          tx,
          {
            actor: principal.id,
            action: "authz",
            outcome: "denied",
            subject: `${spec.method} ${spec.path}`,
            detail: { permission: spec.permission },
          },
          ctx.now(),
        ),
      );
      throw new ModelVaultError("ERR_FORBIDDEN", `this route needs the ${spec.permission} permission`, {
        permission: spec.permission,
      });
    }
    const wait = limiter.hit(
      `principal:${principal.id}`,
      ctx.options.rateLimits.perPrincipalPerMinute ?? 600,
    );
    const spike = ctx.options.anomalyThresholds.requestSpikePerMinute ?? 300;
    if (limiter.count(`principal:${principal.id}`) === spike + 1) {
      await withTransaction(ctx.db, (tx) =>
        recordAnomaly(
          tx,
          {
            kind: "request_spike",
            severity: "warning",
            principalId: principal.id,
            detail: { perMinute: spike + 1 },
          },
          ctx.now(),
          ctx.metrics,
        ),
      );
    }
    if (wait > 0) throw new ModelVaultError("ERR_RATE_LIMITED", undefined, { retryAfter: wait });
    return handler(c, principal, await input(c));
  };
  const method = spec.method.toLowerCase() as "get" | "post" | "put" | "delete";
  app[method](spec.path, run);
}
