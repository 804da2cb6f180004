import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { signUsageReport, usageGenesis } from "../../src/core/usage-report.js";
import { PERMISSIONS } from "../../src/server/auth/permissions.js";
import { CONSOLE_CSP } from "../../src/server/http/console-files.js";
import { tempDir } from "../fixtures.js";
import { DIALECTS, freshPostgres } from "./databases.js";
import { grant, type Harness, registerDigits, startHarness, TestDevice } from "./harness.js";

type Who = { id: string; token: string };

describe.each(DIALECTS)("the read API behind the console (%s)", (dialect) => {
  let h: Harness;
  let licensor: Who;
  let auditor: Who;
  let a: Who;
  let b: Who;
  let entA: string;
  let deviceA: TestDevice;
  let jtiA: string;

  beforeAll(async () => {
    const consoleDir = await tempDir("mv-console-");
    await mkdir(join(consoleDir, "assets"));
    await writeFile(join(consoleDir, "index.html"), "<!doctype html><title>console</title>");
    await writeFile(join(consoleDir, "assets", "index-abc.js"), "export {};");
    h = await startHarness({
      ...(dialect === "postgres" ? { database: await freshPostgres() } : {}),
      options: { consoleDir },
    });
    const publisher = await h.principal("pub", ["publisher"]);
    licensor = await h.principal("lic", ["licensor"]);
    auditor = await h.principal("aud", ["auditor"]);
    a = await h.principal("tenant a", ["client"]);
    b = await h.principal("tenant b", ["client"]);
    const { digest } = await registerDigits(h, publisher);
    entA = await grant(h, licensor.token, a.id);
    await grant(h, licensor.token, b.id);
    deviceA = await TestDevice.create();
    const lic = await deviceA.license(h, a.token, {
      model: { id: "digits", version: 1 },
      manifestDigest: digest,
    });
    jtiA = JSON.parse(Buffer.from(lic.body.license.split(".")[1], "base64url").toString()).jti;
    const now = h.clock.now();
    const report = await signUsageReport(deviceA.sign.privateKey, deviceA.jkt, {
      lic: jtiA,
      seq: 1,
      prev: await usageGenesis(deviceA.jkt),
      count: 7,
      from: now - 30,
      to: now,
      iat: now,
    });
    expect((await h.call("POST", "/v1/usage", a.token, { reports: [report] })).status).toBe(200);
    await TestDevice.create().then((d) =>
      d.license(h, b.token, { model: { id: "digits", version: 1 }, manifestDigest: digest }),
    );
  });

  it("/v1/me names the caller's roles and exactly the permissions they hold", async () => {
    const me = await h.call("GET", "/v1/me", licensor.token);
    expect(me.body).toMatchObject({ id: licensor.id, name: "lic", roles: ["licensor"], via: "api-key" });
    const want = Object.entries(PERMISSIONS)
      .filter(([, roles]) => (roles as readonly string[]).includes("licensor"))
      .map(([p]) => p);
    expect(me.body.permissions.sort()).toEqual(want.sort());
    expect(me.body.permissions).not.toContain("audit:read");
  });

  it("/v1/me/audit shows a principal the entries of its own actions only, newest first", async () => {
    const mine = (await h.call("GET", "/v1/me/audit?limit=1000", licensor.token)).body.entries;
    expect(mine.length).toBeGreaterThanOrEqual(2);
    expect(mine.every((e: { actor: string }) => e.actor === licensor.id)).toBe(true);
    expect(mine[0].action).toBe("entitlement.grant");
    expect(mine[0].seq).toBeGreaterThan(mine[1].seq);
    // Tenancy: client a sees its own usage entry, never b's.
    const ofA = (await h.call("GET", "/v1/me/audit", a.token)).body.entries;
    expect(ofA.map((e: { actor: string }) => e.actor)).toEqual(ofA.map(() => a.id));
    expect(ofA.some((e: { action: string }) => e.action === "usage.accept")).toBe(true);
    const ofB = (await h.call("GET", "/v1/me/audit", b.token)).body.entries;
    expect(ofB.some((e: { subject: string }) => e.subject === deviceA.jkt)).toBe(false);
  });

  it("devices: list, search, summary, detail and usage chain, for licensors and auditors, without keys", async () => {
    for (const who of [licensor, auditor]) {
      const all = await h.call("GET", "/v1/devices?limit=10", who.token);
      expect(all.status).toBe(200);
      expect(all.body.devices).toHaveLength(2);
      expect(Object.keys(all.body.devices[0])).not.toContain("signing_jwk");
    }
    const found = await h.call("GET", `/v1/devices?q=${deviceA.jkt.slice(0, 8)}`, licensor.token);
    expect(found.body.devices.map((d: { id: string }) => d.id)).toEqual([deviceA.jkt]);
    const byName = await h.call("GET", "/v1/devices?q=TENANT%20B", licensor.token);
    expect(byName.body.devices).toHaveLength(1);
    expect(byName.body.devices[0].principal_id).toBe(b.id);
    expect((await h.call("GET", "/v1/devices?q=100%25", licensor.token)).status).toBe(400);
    const summary = await h.call("GET", "/v1/devices/summary", auditor.token);
    expect(summary.body).toEqual({ devices: 2, revoked: 0, seenToday: 2, openLicenses: 2 });
    const detail = await h.call("GET", `/v1/devices/${deviceA.jkt}`, licensor.token);
    expect(detail.body.entitlements.map((e: { id: string }) => e.id)).toEqual([entA]);
    const chain = await h.call("GET", `/v1/devices/${deviceA.jkt}/usage`, auditor.token);
    expect(chain.body.reports).toMatchObject([{ seq: 1, count: 7, license_jti: jtiA }]);
    expect((await h.call("GET", "/v1/devices/nope/usage", auditor.token)).status).toBe(404);
    const licenses = await h.call("GET", `/v1/licenses?device=${deviceA.jkt}&open=true`, auditor.token);
    expect(licenses.body.licenses.map((l: { jti: string }) => l.jti)).toEqual([jtiA]);
  });

  it("entitlements: this period's quota use, devices, and an audited change", async () => {
    const list = (await h.call("GET", "/v1/entitlements", auditor.token)).body.entitlements;
    const row = list.find((e: { id: string }) => e.id === entA);
    expect(row).toMatchObject({ principal_name: "tenant a", quota_used: 7, quota_reserved: 100 });
    const one = await h.call("GET", `/v1/entitlements/${entA}`, licensor.token);
    expect(one.body.period).toMatchObject({ used: 7, reserved: 100 });
    expect(one.body.devices.map((d: { id: string }) => d.id)).toEqual([deviceA.jkt]);
    const changed = await h.call("PUT", `/v1/entitlements/${entA}`, licensor.token, {
      quota: 50,
      maxDevices: 4,
    });
    // The per-license allowance follows a quota lowered below it, as at grant.
    expect(changed.body.changed).toEqual({ quota: 50, maxDevices: 4, licenseAllowance: 50 });
    const entry = (await h.call("GET", "/v1/me/audit?limit=1", licensor.token)).body.entries[0];
    expect(entry).toMatchObject({ action: "entitlement.change", subject: entA });
    expect(JSON.parse(entry.detail)).toEqual({
      before: { quota: 1000, maxDevices: 3, licenseAllowance: 100 },
      after: { quota: 50, maxDevices: 4, licenseAllowance: 50 },
    });
    expect((await h.call("PUT", `/v1/entitlements/${entA}`, licensor.token, {})).status).toBe(400);
    expect((await h.call("PUT", "/v1/entitlements/e_none", licensor.token, { quota: 5 })).status).toBe(404);
    expect((await h.call("PUT", `/v1/entitlements/${entA}`, auditor.token, { quota: 5 })).status).toBe(403);
  });

  it("usage series: inferences per day by model, entitlement and device", async () => {
    const day = h.clock.now() - (h.clock.now() % 86400);
    for (const filter of ["model=digits", `entitlement=${entA}`, `device=${deviceA.jkt}`]) {
      const r = await h.call("GET", `/v1/usage/series?${filter}`, auditor.token);
      expect(r.body.points, filter).toEqual([{ t: day, inferences: 7, reports: 1 }]);
    }
    const hourly = await h.call("GET", "/v1/usage/series?bucket=3600&model=other", auditor.token);
    expect(hourly.body.points).toEqual([]);
    expect((await h.call("GET", "/v1/usage/series?bucket=60", auditor.token)).status).toBe(400);
  });

  it("anomalies: filtered, acknowledged once by an auditor with an audit entry, never by a licensor", async () => {
    const open = (await h.call("GET", "/v1/anomalies?open=true&before=1000000", auditor.token)).body
      .anomalies;
    expect(open.length).toBeGreaterThan(0); // the privileged keys issued above
    const id = open[0].id;
    expect(
      (await h.call("POST", `/v1/anomalies/${id}/acknowledge`, licensor.token, { note: "x" })).status,
    ).toBe(403);
    const ack = await h.call("POST", `/v1/anomalies/${id}/acknowledge`, auditor.token, {
      note: "expected: onboarding",
    });
    expect(ack.body).toEqual({ id, acknowledged: true });
    const again = await h.call("POST", `/v1/anomalies/${id}/acknowledge`, auditor.token, { note: "twice" });
    expect(again.body.error.code).toBe("ERR_CONFLICT");
    expect((await h.call("GET", "/v1/me/audit?limit=1", auditor.token)).body.entries[0]).toMatchObject({
      action: "anomaly.acknowledge",
      subject: String(id),
    });
    const closed = (await h.call("GET", "/v1/anomalies?open=false", auditor.token)).body.anomalies;
    expect(closed).toMatchObject([
      { id, acknowledged_by: auditor.id, acknowledgement: "expected: onboarding" },
    ]);
  });

  it("models and API keys list without secrets; admins see the catalog to retire from it", async () => {
    const models = await h.call("GET", "/v1/models", h.admin);
    expect(models.status).toBe(200);
    expect(models.body.models[0]).toMatchObject({ id: "digits", version: 1, files: 1, monitoring: false });
    expect(models.body.models[0].publisher_kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    for (const secret of ["wrapped_cek", "manifest_jws", "kek_id"])
      expect(models.body.models[0]).not.toHaveProperty(secret);
    const keys = await h.call("GET", `/v1/admin/principals/${a.id}/api-keys`, h.admin);
    expect(keys.body.keys).toHaveLength(1);
    expect(Object.keys(keys.body.keys[0]).sort()).toEqual(["created_at", "id", "revoked_at"]);
  });

  it("serves the console at /console/ with its strict CSP, from memory, nothing else", async () => {
    const page = await fetch(`${h.url}/console/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-security-policy")).toBe(CONSOLE_CSP);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(page.headers.get("cache-control")).toBe("no-store");
    const asset = await fetch(`${h.url}/console/assets/index-abc.js`);
    expect(asset.headers.get("cache-control")).toContain("immutable");
    expect((await fetch(`${h.url}/console`, { redirect: "manual" })).headers.get("location")).toBe(
      "/console/",
    );
    for (const path of [
      "/console/..%2fmodelvault.sqlite",
      "/console/assets/..%2F..%2Fkeys",
      "/console/nope.js",
    ])
      expect((await fetch(`${h.url}${path}`)).status, path).toBe(404);
    expect(CONSOLE_CSP).toContain("script-src 'self';");
    expect(CONSOLE_CSP).not.toContain("unsafe");
  });
});

describe("a server without the console", () => {
  it("answers /console/ with ERR_CONSOLE_UNAVAILABLE", async () => {
    const h = await startHarness({ options: { consoleDir: false } });
    const r = await h.call("GET", "/console/");
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe("ERR_CONSOLE_UNAVAILABLE");
  });
});
