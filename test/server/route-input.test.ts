import { createHash } from "node:crypto";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { verifyAuditLog } from "../../src/server/audit/verify-audit.js";
import { PERMISSIONS, type Permission } from "../../src/server/auth/permissions.js";
import { ROUTE_TABLE, type RouteSpec } from "../../src/server/http/define-route.js";
import { DIALECTS, freshPostgres } from "./databases.js";
import { type Harness, registerDigits, startHarness } from "./harness.js";
import { arbitraryFor, HOSTILE_STRINGS } from "./schema-arbitrary.js";

/** Tables whose content a refused request must leave exactly as it was (the audit log may grow: denials are recorded). */
const BUSINESS_TABLES = [
  "principals",
  "principal_roles",
  "api_keys",
  "publisher_keys",
  "models",
  "model_owners",
  "model_retirements",
  "entitlements",
  "entitlement_devices",
  "quota_counters",
  "devices",
  "licenses",
  "usage_reports",
  "server_secrets",
] as const;

describe.each(DIALECTS)("every route's path, query, headers and body (%s)", (dialect) => {
  let h: Harness;
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    h = await startHarness(dialect === "postgres" ? { database: await freshPostgres() } : {});
    tokens.admin = h.admin;
    for (const role of ["publisher", "licensor", "auditor", "client"])
      tokens[role] = (await h.principal(`fuzz-${role}`, [role])).token;
    const publisher = await h.principal("fuzz-pub2", ["publisher"]);
    await registerDigits(h, publisher);
  });

  /** A digest of every business table's rows, in key order. */
  async function state(): Promise<string> {
    const hash = createHash("sha256");
    for (const t of BUSINESS_TABLES) {
      const rows = await h.server.ctx.db.kysely.selectFrom(t).selectAll().execute();
      const lines = rows.map((r) => JSON.stringify(r)).sort();
      hash.update(`${t}:${lines.join("\n")}\n`);
    }
    return hash.digest("hex");
  }

  const tokenFor = (route: RouteSpec) =>
    route.permission === "public"
      ? undefined
      : tokens[(PERMISSIONS[route.permission as Permission] as readonly string[])[0] as string];
  const withParams = (route: RouteSpec, value: (name: string) => string) =>
    route.path.replace(/:(\w+)/g, (_, name: string) => value(name));
  const routes = () => ROUTE_TABLE.filter((r) => r.path.includes(":"));

  it("malformed path ids (_x, %00, __proto__, 5,000 characters, bad id!) are 400 or 404 on every :id route, never 500, and change nothing", async () => {
    expect(routes().length).toBeGreaterThanOrEqual(10);
    const values = ["_x", "%00", "__proto__", "a".repeat(5000), "bad%20id!", "%", "%E0%A4%A", "..%2F..%2Fx"];
    const failures: string[] = [];
    for (const route of routes()) {
      for (const v of values) {
        const before = await state();
        const path = withParams(route, () => v);
        const body = route.method === "POST" || route.method === "PUT" ? {} : undefined;
        const r = await h.call(route.method, path, tokenFor(route), body);
        if (r.status >= 500 || ![400, 404].includes(r.status))
          failures.push(
            `${route.method} ${route.path} with ${v.slice(0, 20)}: ${r.status} ${JSON.stringify(r.body).slice(0, 120)}`,
          );
        if (r.status === 400 && r.body.error.code !== "ERR_REQUEST_INVALID")
          failures.push(`${route.method} ${route.path} with ${v.slice(0, 20)}: ${r.body.error.code}`);
        if ((await state()) !== before)
          failures.push(`${route.method} ${route.path} with ${v.slice(0, 20)} changed state`);
      }
    }
    expect(failures).toEqual([]);
    const logged = JSON.stringify(h.logs);
    expect(logged).not.toContain("ZodError");
    expect(logged).not.toContain("unhandled error");
  });

  it("hostile queries are 400 naming the parameter", async () => {
    for (const q of ["limit=-1", "limit=abc", "limit=1e400", "after=-5", "unknown=1", "limit=2000"]) {
      const r = await h.call("GET", `/v1/audit?${q}`, tokens.auditor);
      expect(r.status, q).toBe(400);
      expect(r.body.error.code).toBe("ERR_REQUEST_INVALID");
      expect(r.body.error.data.in).toBe("query");
    }
  });

  it("a duplicate OIDC issuer + subject is 409, never a unique-violation 500, also when two arrive at once", async () => {
    const body = {
      name: "alice",
      roles: ["auditor"],
      oidc: { issuer: "https://idp.example", subject: "alice" },
    };
    expect((await h.call("POST", "/v1/admin/principals", h.admin, body)).status).toBe(201);
    const dup = await h.call("POST", "/v1/admin/principals", h.admin, body);
    expect(dup.status).toBe(409);
    expect(dup.body.error.code).toBe("ERR_CONFLICT");
    // Identity is issuer + subject: the same subject at another issuer is another principal.
    const elsewhere = { ...body, oidc: { issuer: "https://other-idp.example", subject: "alice" } };
    expect((await h.call("POST", "/v1/admin/principals", h.admin, elsewhere)).status).toBe(201);
    const twin = { ...body, oidc: { ...body.oidc, subject: "bob" } };
    const both = await Promise.all(
      [1, 2, 3].map(() => h.call("POST", "/v1/admin/principals", h.admin, twin)),
    );
    expect(both.map((r) => r.status).sort()).toEqual([201, 409, 409]);
  });

  it("fuzzes every route from its own schemas: no 5xx, and a refused request changes nothing", async () => {
    const fuzzed = ROUTE_TABLE.filter(
      (r) => r.schemas && (r.schemas.params || r.schemas.query || r.schemas.body),
    );
    expect(fuzzed.length).toBeGreaterThanOrEqual(15);
    const failures: string[] = [];
    for (const route of fuzzed) {
      const s = route.schemas ?? {};
      const request = fc.record({
        params: s.params ? arbitraryFor(s.params) : fc.constant({}),
        query: s.query ? arbitraryFor(s.query) : fc.constant({}),
        body: s.body
          ? fc.oneof(
              { weight: 6, arbitrary: arbitraryFor(s.body) },
              { weight: 1, arbitrary: fc.constantFrom("{", "[]", '{"a":1} x', "", "\u0000", "null") },
            )
          : fc.constant(undefined),
        contentType: fc.constantFrom(
          "application/json",
          "application/json",
          "text/plain",
          "application/json; charset=latin1",
        ),
      });
      await fc.assert(
        fc.asyncProperty(request, async (req) => {
          const before = await state();
          const params = (req.params && typeof req.params === "object" ? req.params : {}) as Record<
            string,
            unknown
          >;
          const path = withParams(route, (name) =>
            encodeURIComponent(String(params[name] ?? HOSTILE_STRINGS[0])),
          );
          const query =
            req.query && typeof req.query === "object"
              ? new URLSearchParams(
                  Object.entries(req.query as Record<string, unknown>).map(([k, v]) => [k, String(v)]),
                ).toString()
              : "";
          const hasBody = route.method === "POST" || route.method === "PUT";
          const r = await h.call(
            route.method,
            `${path}${query ? `?${query}` : ""}`,
            tokenFor(route),
            hasBody ? (typeof req.body === "string" ? req.body : JSON.stringify(req.body ?? {})) : undefined,
            hasBody ? { "content-type": req.contentType } : {},
          );
          if (r.status >= 500)
            failures.push(`${route.method} ${route.path}: ${r.status} ${JSON.stringify(req).slice(0, 200)}`);
          if (r.status >= 400 && (await state()) !== before)
            failures.push(`${route.method} ${route.path}: refused (${r.status}) but changed state`);
        }),
        { numRuns: 40, seed: 20_260_101 },
      );
    }
    expect(failures).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const entries = await h.server.ctx.db.kysely.selectFrom("audit_log").selectAll().orderBy("seq").execute();
    const jwks = (await h.call("GET", "/.well-known/jwks.json")).body;
    await expect(verifyAuditLog(entries, [], jwks)).resolves.toMatchObject({ entries: entries.length });
    // 40 requests per route, each with two reads of the database state, and the routes grow.
  }, 240_000);
});
