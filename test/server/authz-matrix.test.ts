import { beforeAll, describe, expect, it } from "vitest";
import { signUsageReport, usageGenesis } from "../../src/core/usage-report.js";
import { PERMISSIONS, ROLES } from "../../src/server/auth/permissions.js";
import { ROUTE_TABLE } from "../../src/server/http/define-route.js";
import { grant, type Harness, registerDigits, startHarness, TestDevice } from "./harness.js";

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
    expect(paths).toContain("POST /v1/models/:model/versions/:version/traces");
    expect(ROUTE_TABLE.length).toBeGreaterThanOrEqual(25);
  });

  it("allows each route for exactly the roles holding its permission, refuses the rest with 403", async () => {
    const routes = ROUTE_TABLE.filter((r) => r.permission !== "public");
    const failures: string[] = [];
    for (const route of routes) {
      const path = route.path.replace(/:version/g, "1").replace(/:\w+/g, "zz-none");
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
    const publisher = await h.principal("bola-pub", ["publisher"]);
    const licensor = await h.principal("bola-lic", ["licensor"]);
    const { digest } = await registerDigits(h, publisher);
    const a = await h.principal("a", ["client"]);
    const b = await h.principal("b", ["client"]);
    for (const p of [a, b]) await grant(h, licensor.token, p.id);
    const model = { id: "digits", version: 1 };
    const devices = { a: await TestDevice.create(), b: await TestDevice.create() };
    const licA = await devices.a.license(h, a.token, { model, manifestDigest: digest });
    const licB = await devices.b.license(h, b.token, { model, manifestDigest: digest });
    const jti = (r: typeof licA) =>
      JSON.parse(Buffer.from(r.body.license.split(".")[1], "base64url").toString()).jti as string;
    for (const [who, dev, lic] of [
      [a, devices.a, licA],
      [b, devices.b, licB],
    ] as const) {
      const report = await signUsageReport(dev.sign.privateKey, dev.jkt, {
        lic: jti(lic),
        seq: 1,
        prev: await usageGenesis(dev.jkt),
        count: 2,
        from: h.clock.now() - 5,
        to: h.clock.now(),
        iat: h.clock.now(),
      });
      expect((await h.call("POST", "/v1/usage", who.token, { reports: [report] })).status).toBe(200);
    }
    const mine = await h.call("GET", "/v1/me/licenses?limit=100", a.token);
    expect(mine.status).toBe(200);
    expect(mine.body.licenses.map((l: { jti: string }) => l.jti)).toEqual([jti(licA)]);
    const usage = await h.call("GET", "/v1/me/usage?limit=100", a.token);
    expect(usage.body.usage.map((u: { device_id: string }) => u.device_id)).toEqual([devices.a.jkt]);
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

  it("separation of duties: an admin cannot hold a second key next to a principal's own, nor a privileged role", async () => {
    const auditor = await h.principal("sod-auditor", ["auditor"]);
    const second = await h.call("POST", `/v1/admin/principals/${auditor.id}/api-keys`, h.admin);
    expect(second.status).toBe(409);
    expect(second.body.error.code).toBe("ERR_KEY_HOLDER_ACTIVE");
    // The principal rotates its own key; the old one stops working.
    const rotated = await h.call("POST", "/v1/me/api-keys", auditor.token, { revokeOthers: true });
    expect(rotated.status).toBe(201);
    expect((await h.call("GET", "/v1/anomalies", auditor.token)).status).toBe(401);
    expect((await h.call("GET", "/v1/anomalies", rotated.body.token)).status).toBe(200);
    // Minting the first key of a privileged principal is an anomaly auditors see.
    const anomalies = (await h.call("GET", "/v1/anomalies?limit=1000", rotated.body.token)).body
      .anomalies as {
      kind: string;
      principal_id: string;
    }[];
    expect(anomalies.some((a) => a.kind === "privileged_key_issued" && a.principal_id === auditor.id)).toBe(
      true,
    );
    // Admin and any role that acts on models, entitlements or the record are never combined.
    for (const roles of [
      ["admin", "licensor"],
      ["admin", "publisher"],
      ["admin", "auditor"],
    ]) {
      const r = await h.call("POST", "/v1/admin/principals", h.admin, { name: "x", roles });
      expect(r.body.error.code, roles.join("+")).toBe("ERR_ROLE_CONFLICT");
    }
  });

  it("separation of duties: promoting a principal revokes the keys it had, so a key an admin minted never gains a role", async () => {
    const client = await h.principal("promoted", ["client"]);
    expect((await h.call("GET", "/v1/me/licenses", client.token)).status).toBe(200);
    const r = await h.call("PUT", `/v1/admin/principals/${client.id}/roles`, h.admin, {
      roles: ["client", "licensor"],
    });
    expect(r.status).toBe(200);
    expect(r.body.keysRevoked).toBe(1);
    expect((await h.call("GET", "/v1/entitlements", client.token)).status).toBe(401);
    // Re-enrolment is possible (no active key), and recorded.
    expect((await h.call("POST", `/v1/admin/principals/${client.id}/api-keys`, h.admin)).status).toBe(201);
  });

  it("a principal can revoke its own keys and nobody else's", async () => {
    const a = await h.principal("self-a", ["client"]);
    const b = await h.principal("self-b", ["client"]);
    const extra = await h.call("POST", "/v1/me/api-keys", a.token, {});
    const bKeyId = /^mvk_([A-Za-z0-9_-]{12})_/.exec(b.token)?.[1] as string;
    expect((await h.call("DELETE", `/v1/me/api-keys/${bKeyId}`, a.token)).status).toBe(404);
    expect((await h.call("GET", "/v1/me/licenses", b.token)).status).toBe(200);
    expect((await h.call("DELETE", `/v1/me/api-keys/${extra.body.id}`, a.token)).status).toBe(200);
    expect((await h.call("GET", "/v1/me/licenses", extra.body.token)).status).toBe(401);
    expect((await h.call("GET", "/v1/me/licenses", a.token)).status).toBe(200);
  });
});
