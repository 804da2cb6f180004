import { beforeAll, describe, expect, it } from "vitest";
import { signUsageReport, usageGenesis, usageReportHash } from "../../src/core/usage-report.js";
import { DIALECTS, freshPostgres } from "./databases.js";
import { grant, type Harness, registerDigits, startHarness, TestDevice } from "./harness.js";

const model = { id: "digits", version: 1 };
const PERIOD = 366 * 86400;
const jtiOf = (license: string) =>
  JSON.parse(Buffer.from(license.split(".")[1] as string, "base64url").toString()).jti as string;

describe.each(DIALECTS)("usage before renewal, quota charged from reports (%s)", (dialect) => {
  let h: Harness;
  let licensor: { id: string; token: string };
  let digest: string;

  beforeAll(async () => {
    h = await startHarness(dialect === "postgres" ? { database: await freshPostgres() } : {});
    // Quota periods are aligned to the epoch: start at the beginning of one, so that the hours
    // these tests move the clock by never cross into a fresh period.
    h.clock.t = Math.ceil(h.clock.t / PERIOD) * PERIOD + 10;
    const publisher = await h.principal("pub", ["publisher"]);
    licensor = await h.principal("lic", ["licensor"]);
    ({ digest } = await registerDigits(h, publisher));
  });

  /** A client, an entitlement, and devices that sign their usage chain like the runtime does. */
  async function setup(over: Record<string, unknown>) {
    const client = await h.principal(`c${Math.random()}`, ["client"]);
    const ent = await grant(h, licensor.token, client.id, { periodSeconds: PERIOD, ...over });
    const devices = () => reporter(client.token);
    return { client, ent, devices };
  }

  async function reporter(token: string) {
    const device = await TestDevice.create();
    let seq = 0;
    let prev = await usageGenesis(device.jkt);
    let jti = "";
    return {
      device,
      get jti() {
        return jti;
      },
      async license() {
        const r = await device.license(h, token, { model, manifestDigest: digest });
        if (r.status === 200) jti = jtiOf(r.body.license);
        return r;
      },
      async report(count: number, lic = jti) {
        const t = await signUsageReport(device.sign.privateKey, device.jkt, {
          lic,
          seq: seq + 1,
          prev,
          count,
          from: h.clock.now() - 1,
          to: h.clock.now(),
          iat: h.clock.now(),
        });
        const r = await h.call("POST", "/v1/usage", token, { reports: [t] });
        if (r.body.results?.[0]?.status === "accepted") {
          seq++;
          prev = await usageReportHash(t);
        }
        return r;
      },
    };
  }

  /** The entitlement's counters, summed over periods (a test may cross a period boundary). */
  async function counter(ent: string) {
    const rows = await h.server.ctx.db.kysely
      .selectFrom("quota_counters")
      .selectAll()
      .where("entitlement_id", "=", ent)
      .execute();
    return { reserved: rows.reduce((n, r) => n + r.reserved, 0), used: rows.reduce((n, r) => n + r.used, 0) };
  }

  /** The invariant: reserved = Σ charge, charge = settled ? used : max(allowance, used). */
  async function charges(ent: string) {
    const rows = await h.server.ctx.db.kysely
      .selectFrom("licenses")
      .select(["allowance", "used", "released_at"])
      .where("entitlement_id", "=", ent)
      .execute();
    return rows.reduce((n, l) => n + (l.released_at !== null ? l.used : Math.max(l.allowance, l.used)), 0);
  }

  it("renewing without reports never returns the allowance: 20 renewals on a quota of 100 stop at the quota", async () => {
    const { ent, devices } = await setup({ quota: 100, licenseAllowance: 10, maxDevices: 1 });
    const d = await devices();
    const outcomes: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await d.license();
      outcomes.push(r.status === 200 ? "ok" : r.body.error.code);
    }
    expect(outcomes.filter((o) => o === "ok").length).toBe(10);
    expect(outcomes.slice(10)).toEqual(Array(10).fill("ERR_QUOTA_EXHAUSTED"));
    expect((await counter(ent)).reserved).toBe(100);
    expect(await charges(ent)).toBe(100);
  });

  it("beyond the grace, a renewal needs a report covering the previous license (ERR_USAGE_OVERDUE names it)", async () => {
    const { devices } = await setup({ quota: 1000, licenseAllowance: 10, licenseTtlSeconds: 600 });
    const d = await devices();
    expect((await d.license()).status).toBe(200);
    const first = d.jti;
    h.clock.advance(450); // the runtime renews at 75% of the lifetime
    const overdue = await d.license();
    expect(overdue.status).toBe(403);
    expect(overdue.body.error).toMatchObject({ code: "ERR_USAGE_OVERDUE", data: { license: first } });
    expect((await d.report(4, first)).body.results[0].status).toBe("accepted");
    expect((await d.license()).status).toBe(200);
    // A report long before the renewal does not cover it: it must come within the grace.
    h.clock.advance(30);
    await d.report(1);
    h.clock.advance(420);
    expect((await d.license()).body.error.code).toBe("ERR_USAGE_OVERDUE");
  });

  it("an honest device that reports before each renewal is charged exactly what it reported", async () => {
    const { ent, devices } = await setup({ quota: 1000, licenseAllowance: 10 });
    const d = await devices();
    expect((await d.license()).status).toBe(200);
    for (let i = 0; i < 20; i++) {
      h.clock.advance(450);
      expect((await d.report(3)).body.results[0].status).toBe("accepted");
      const r = await d.license();
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.allowance).toBe(10);
    }
    const c = await counter(ent);
    expect(c.used).toBe(60);
    expect(c.reserved).toBe(60 + 10); // 20 settled licenses charged 3 each, the open one its allowance
    expect(await charges(ent)).toBe(c.reserved);
  });

  it("devices that vanish give their unused allowance back once their licenses can no longer be used, exactly, under concurrency", async () => {
    const { ent, devices } = await setup({
      quota: 30,
      licenseAllowance: 10,
      maxDevices: 100,
      licenseTtlSeconds: 600,
      offlineSeconds: 3600,
    });
    const a = await devices();
    const b = await devices();
    const c = await devices();
    for (const d of [a, b, c]) expect((await d.license()).status).toBe(200);
    await a.report(2);
    await c.report(5);
    const fourth = await devices();
    expect((await fourth.license()).body.error.code).toBe("ERR_QUOTA_EXHAUSTED");
    // Within their offline allowance the three could still be running: nothing returns yet.
    h.clock.advance(600 + 3600 - 1);
    expect((await fourth.license()).body.error.code).toBe("ERR_QUOTA_EXHAUSTED");
    h.clock.advance(2);
    // One vanished device's late report arrives, then 20 new devices ask at once. (Racing the
    // report against the settlement is not exact: a report charged after the settlement returned
    // its license's unused allowance over-grants by its count — seen once as 23 instead of 22.)
    const newcomers = await Promise.all(Array.from({ length: 20 }, () => devices()));
    const nonce = (await h.call("POST", "/v1/licenses", "", {})).headers.get("dpop-nonce") ?? undefined;
    for (const n of newcomers) n.device.nonce = nonce;
    const late = await c.report(1);
    const results = await Promise.all(newcomers.map((n) => n.license()));
    expect(late.body.results[0].status).toBe("accepted");
    const granted = results.filter((r) => r.status === 200).map((r) => r.body.allowance as number);
    // 30 - (2 + 0 + 6) reported = 22 left: 10 + 10 + 2.
    expect(granted.reduce((x, y) => x + y, 0)).toBe(22);
    expect(results.filter((r) => r.body?.error?.code === "ERR_QUOTA_EXHAUSTED").length).toBe(
      20 - granted.length,
    );
    expect((await counter(ent)).reserved).toBe(30);
    expect(await charges(ent)).toBe(30);
  });

  it("a report arriving after its license was settled is still charged once", async () => {
    const { ent, devices } = await setup({
      quota: 100,
      licenseAllowance: 10,
      offlineSeconds: 0,
      scopes: ["infer"],
    });
    const d = await devices();
    await d.license();
    h.clock.advance(601);
    const other = await devices();
    expect((await other.license()).status).toBe(200); // settles d's expired license (nothing reported)
    expect((await counter(ent)).reserved).toBe(10);
    expect((await d.report(7)).body.results[0].status).toBe("accepted");
    expect((await counter(ent)).reserved).toBe(17);
    expect(await charges(ent)).toBe(17);
  });
});
