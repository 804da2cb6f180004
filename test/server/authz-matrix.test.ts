import { beforeAll, describe, expect, it } from "vitest";
import { PERMISSIONS, ROLES } from "../../src/server/auth/permissions.js";
import { ROUTE_TABLE } from "../../src/server/http/define-route.js";
import { type Harness, startHarness } from "./harness.js";

let h: Harness;
const tokens: Record<string, string> = {};

beforeAll(async () => {
  h = await startHarness();
  for (const role of ROLES) tokens[role] = (await h.principal(`only-${role}`, [role])).token;
});

describe("role × route matrix", () => {
  it("covers every route (the table is not empty and lists the API)", () => {
    const paths = ROUTE_TABLE.map((r) => `${r.method} ${r.path}`);
    expect(paths).toContain("POST /v1/licenses");
    expect(paths).toContain("POST /v1/models");
    expect(paths).toContain("GET /v1/audit");
    expect(ROUTE_TABLE.length).toBeGreaterThanOrEqual(25);
  });

  it("allows each route for exactly the roles holding its permission, refuses the rest with 403", async () => {
    const routes = ROUTE_TABLE.filter((r) => r.permission !== "public");
    const failures: string[] = [];
    for (const route of routes) {
      const path = route.path.replace(/:id/g, "zz-none");
      const allowed = PERMISSIONS[route.permission as keyof typeof PERMISSIONS] as readonly string[];
      for (const role of ROLES) {
        const body = route.method === "POST" || route.method === "PUT" ? {} : undefined;
        const r = await h.call(route.method, path, tokens[role], body);
        const got =
          r.status === 403 && r.body?.error?.code === "ERR_FORBIDDEN"
            ? "forbidden"
            : r.status === 401
              ? "unauthenticated"
              : "allowed";
        const want = allowed.includes(role) ? "allowed" : "forbidden";
        if (got !== want)
          failures.push(
            `${route.method} ${route.path} as ${role}: ${got} (${r.status} ${r.body?.error?.code ?? ""}), want ${want}`,
          );
        if (got === "allowed") expect(r.status, `${route.method} ${route.path} as ${role}`).toBeLessThan(500);
      }
      const anonymous = await h.call(route.method, path, undefined, route.method === "GET" ? undefined : {});
      if (anonymous.status !== 401)
        failures.push(`${route.method} ${route.path} without credential: ${anonymous.status}`);
    }
    expect(failures).toEqual([]);
  });

  it("records authorization failures in the audit log", async () => {
    await h.call("GET", "/v1/audit", tokens.client);
    const audit = await h.call("GET", "/v1/audit?limit=1000", tokens.auditor);
    expect(
      audit.body.entries.some(
        (e: { action: string; outcome: string }) => e.action === "authz" && e.outcome === "denied",
      ),
    ).toBe(true);
  });

  it("enforces separation of duties on role changes", async () => {
    const p = await h.principal("sod", ["publisher"]);
    const r = await h.call("PUT", `/v1/admin/principals/${p.id}/roles`, h.admin, {
      roles: ["publisher", "licensor"],
    });
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe("ERR_ROLE_CONFLICT");
    const created = await h.call("POST", "/v1/admin/principals", h.admin, {
      name: "x",
      roles: ["admin", "auditor"],
    });
    expect(created.body.error.code).toBe("ERR_ROLE_CONFLICT");
    const adminId = (await h.call("GET", "/v1/admin/principals", h.admin)).body.principals.find(
      (x: { name: string }) => x.name === "bootstrap admin",
    ).id;
    const self = await h.call("PUT", `/v1/admin/principals/${adminId}/roles`, h.admin, {
      roles: ["admin", "licensor"],
    });
    expect(self.body.error.code).toBe("ERR_ROLE_CONFLICT");
  });

  it("a client sees only its own licenses and usage (no BOLA)", async () => {
    const a = await h.principal("a", ["client"]);
    const r = await h.call("GET", "/v1/me/licenses?limit=5", a.token);
    expect(r.status).toBe(200);
    expect(r.body.licenses).toEqual([]);
  });

  it("revoked API keys stop working at once", async () => {
    const p = await h.call("POST", "/v1/admin/principals", h.admin, { name: "temp", roles: ["auditor"] });
    const k = await h.call("POST", `/v1/admin/principals/${p.body.id}/api-keys`, h.admin);
    expect((await h.call("GET", "/v1/anomalies", k.body.token)).status).toBe(200);
    expect((await h.call("DELETE", `/v1/admin/api-keys/${k.body.id}`, h.admin)).status).toBe(200);
    const after = await h.call("GET", "/v1/anomalies", k.body.token);
    expect(after.status).toBe(401);
    expect(after.body.error.code).toBe("ERR_AUTH_INVALID");
  });
});
