import { randomUUID } from "node:crypto";
import { Hono } from "hono";
import { ModelVaultError } from "../../core/errors.js";
import { AuthThrottle } from "../auth/auth-throttle.js";
import { identityIsActive } from "../auth/authenticate.js";
import type { ServerContext } from "../context.js";
import { publicJwks } from "../keys/server-keys.js";
import { adminRoutes } from "../routes/admin-routes.js";
import { auditRoutes } from "../routes/audit-routes.js";
import { catalogRoutes } from "../routes/catalog-routes.js";
import { inventoryRoutes } from "../routes/inventory-routes.js";
import { licenseRoutes } from "../routes/license-routes.js";
import { selfRoutes } from "../routes/self-routes.js";
import { traceRoutes } from "../routes/trace-routes.js";
import { ClientAddresses } from "./client-address.js";
import { consoleRoutes } from "./console-files.js";
import { defineRoute, ROUTE_TABLE, type RouteDeps, socketAddress } from "./define-route.js";
import { errorResponse } from "./errors.js";
import { RateLimiter } from "./rate-limiter.js";

const SECURITY_HEADERS: Record<string, string> = {
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  "Referrer-Policy": "no-referrer",
  "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
  "Cross-Origin-Resource-Policy": "cross-origin",
};

/**
 * Builds the Hono app: request id, logging and metrics, security headers, CORS for the
 * allow-listed browser origins, drain on shutdown, the routes, 404/405, and one error mapper.
 */
export function createApp(ctx: ServerContext, state: { draining: boolean }): Hono {
  const app = new Hono();
  const deps: RouteDeps = {
    ctx,
    limiter: new RateLimiter(() => ctx.now()),
    throttle: new AuthThrottle(ctx.db, ctx.options.rateLimits.authFailuresPerMinute ?? 20, ctx.now, (id) =>
      identityIsActive(ctx, id),
    ),
    addresses: new ClientAddresses(ctx.options.trustProxy, (from) =>
      ctx.logger.log("warn", "X-Forwarded-For ignored: no trusted proxy configured (--trust-proxy)", {
        from,
      }),
    ),
  };

  app.use(async (c, next) => {
    const started = performance.now();
    const requestId = randomUUID();
    c.set("requestId" as never, requestId as never);
    const origin = c.req.header("origin");
    const allowed = origin !== undefined && ctx.options.corsOrigins.includes(origin);
    if (c.req.method === "OPTIONS" && allowed) {
      return new Response(null, {
        status: 204,
        headers: {
          "Access-Control-Allow-Origin": origin,
          "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE",
          "Access-Control-Allow-Headers": "Authorization, DPoP, Content-Type",
          "Access-Control-Max-Age": "600",
          Vary: "Origin",
        },
      });
    }
    if (state.draining) {
      c.res = errorResponse(
        ctx,
        c,
        new ModelVaultError("ERR_UNAVAILABLE", "shutting down", { retryAfter: 5 }),
      );
    } else {
      await next();
    }
    // RFC 9449 §8.2: a fresh nonce may come with any response; clients then need no extra round trip.
    if (c.req.path === "/v1/licenses" && !c.res.headers.has("DPoP-Nonce"))
      c.res.headers.set("DPoP-Nonce", ctx.nonces.issue());
    // While draining, close each connection after its response instead of keeping it alive.
    if (state.draining) c.res.headers.set("Connection", "close");
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) {
      // The console's pages bring their own policy (script-src 'self', not 'none').
      if (k === "Content-Security-Policy" && c.res.headers.has(k)) continue;
      if (k === "Cross-Origin-Resource-Policy" && c.res.headers.has(k)) continue;
      c.res.headers.set(k, v);
    }
    // Clients take the server's time from Date (DPoP iat, license checks): say the time the
    // server judges by, not only the socket layer's.
    c.res.headers.set("Date", new Date(ctx.now() * 1000).toUTCString());
    if (ctx.options.tls) c.res.headers.set("Strict-Transport-Security", "max-age=31536000");
    if (!c.res.headers.has("Cache-Control")) c.res.headers.set("Cache-Control", "no-store");
    if (allowed) {
      c.res.headers.set("Access-Control-Allow-Origin", origin);
      c.res.headers.set("Access-Control-Expose-Headers", "DPoP-Nonce, WWW-Authenticate, Retry-After, Date");
      c.res.headers.append("Vary", "Origin");
    }
    const route = c.req.routePath ?? "unmatched";
    const seconds = (performance.now() - started) / 1000;
    ctx.metrics.inc("modelvault_http_requests_total", "HTTP requests by route and status.", {
      route,
      method: c.req.method,
      status: String(c.res.status),
    });
    ctx.metrics.observeDuration(route, seconds);
    ctx.logger.log("info", "request", {
      requestId,
      method: c.req.method,
      route,
      status: c.res.status,
      code: c.get("errorCode" as never) ?? null,
      ms: Math.round(seconds * 1000),
      principal: c.get("principal" as never) ?? null,
      ip: deps.addresses.of(socketAddress(c), c.req.header("x-forwarded-for")),
    });
  });

  defineRoute(app, deps, { method: "GET", path: "/healthz", permission: "public" }, async (c) =>
    c.json({ status: "ok" }),
  );
  defineRoute(app, deps, { method: "GET", path: "/.well-known/jwks.json", permission: "public" }, async (c) =>
    c.json(publicJwks(ctx.keys), 200, { "Cache-Control": "public, max-age=300" }),
  );
  defineRoute(app, deps, { method: "GET", path: "/metrics", permission: "metrics:read" }, async (c) =>
    c.text(ctx.metrics.render(), 200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" }),
  );
  licenseRoutes(app, deps);
  selfRoutes(app, deps);
  catalogRoutes(app, deps);
  inventoryRoutes(app, deps);
  adminRoutes(app, deps);
  auditRoutes(app, deps);
  traceRoutes(app, deps);
  consoleRoutes(app, ctx.options.consoleDir);

  // A known path with another method is 405, anything else 404 (ASVS 4.1.4).
  const paths = [...new Set(ROUTE_TABLE.map((r) => r.path))];
  for (const path of paths)
    app.all(path, () => Promise.reject(new ModelVaultError("ERR_METHOD_NOT_ALLOWED")));
  app.notFound((c) => errorResponse(ctx, c, new ModelVaultError("ERR_NOT_FOUND")));
  app.onError((e, c) => errorResponse(ctx, c, e));
  return app;
}
