import { beforeAll, describe, expect, it } from "vitest";
import { DIALECTS } from "./databases.js";
import {
  releasedAt,
  reportingDevice,
  reservedByPeriod,
  startTenancy,
  type Tenancy,
  tenant,
  toPeriodEnd,
} from "./tenancy.js";

const YEAR = 366 * 86400;
const HOUR = 3600;
/** A license nobody can use 600 s after it was issued (no offline time), so it settles then. */
const SHORT = { scopes: ["infer"], offlineSeconds: 0, licenseTtlSeconds: 600 };

describe.each(DIALECTS)("quota counters stay with their entitlement and period (%s)", (dialect) => {
  let t: Tenancy;
  beforeAll(async () => {
    t = await startTenancy(dialect);
    // Quota periods are epoch-aligned: start at the beginning of a long one, so that the tests
    // that must stay in one period (they move the clock by minutes) never cross into the next.
    t.h.clock.t = Math.ceil(t.h.clock.t / YEAR) * YEAR + 10;
  });
  const period = (length = YEAR) => t.h.clock.now() - (t.h.clock.now() % length);
  const client = async (over: Record<string, unknown>) => {
    const c = await tenant(t, { periodSeconds: YEAR, ...over });
    return { ...c, device: () => reportingDevice(t, c.client.token) };
  };

  it("two principals entitled to the same model: one's licenses never charge the other's quota", async () => {
    const a = await client({ quota: 1000, licenseAllowance: 10 });
    const b = await client({ quota: 20, licenseAllowance: 10 });
    expect((await (await b.device()).license()).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await (await a.device()).license()).status).toBe(200);
    const second = await (await b.device()).license();
    expect(second.status, JSON.stringify(second.body)).toBe(200);
    expect(second.body.allowance).toBe(10);
    expect(await reservedByPeriod(t, a.ent)).toEqual({ [period()]: 30 });
    expect(await reservedByPeriod(t, b.ent)).toEqual({ [period()]: 20 });
  });

  it("settling one entitlement's expired licenses leaves another entitlement's licenses and counter alone", async () => {
    const a = await client({ ...SHORT, quota: 1000, licenseAllowance: 10 });
    const b = await client({ ...SHORT, quota: 1000, licenseAllowance: 10 });
    const da = await a.device();
    const db = await b.device();
    expect((await da.license()).status).toBe(200);
    expect((await db.license()).status).toBe(200);
    t.h.clock.advance(601);
    // a's next request settles a's expired license: b's, expired too, waits for b's own traffic.
    expect((await (await a.device()).license()).status).toBe(200);
    expect(await releasedAt(t, da.jti())).toBe(t.h.clock.now());
    expect(await releasedAt(t, db.jti())).toBeNull();
    expect(await reservedByPeriod(t, a.ent)).toEqual({ [period()]: 10 });
    expect(await reservedByPeriod(t, b.ent)).toEqual({ [period()]: 10 });
  });

  it("a license settled after its period ended is refunded to that period, not to the one running", async () => {
    const e = await client({ ...SHORT, periodSeconds: HOUR, quota: 1000, licenseAllowance: 10 });
    const end = toPeriodEnd(t.h, HOUR, 100);
    const old = await e.device();
    expect((await old.license()).status).toBe(200); // usable until end + 500
    t.h.clock.advance(110);
    expect((await (await e.device()).license()).status).toBe(200);
    t.h.clock.advance(600 - 110 + 1);
    expect((await (await e.device()).license()).status).toBe(200); // settles `old`, nothing reported
    expect(await releasedAt(t, old.jti())).not.toBeNull();
    expect(await reservedByPeriod(t, e.ent)).toEqual({ [end - HOUR]: 0, [end]: 20 });
  });

  it("a new period starts with the whole quota, however much of the last one was spent", async () => {
    const e = await client({ periodSeconds: HOUR, quota: 10, licenseAllowance: 10 });
    const end = toPeriodEnd(t.h, HOUR, 100);
    expect((await (await e.device()).license()).status).toBe(200);
    const next = await e.device();
    expect((await next.license()).body.error.code).toBe("ERR_QUOTA_EXHAUSTED");
    t.h.clock.advance(110);
    const r = await next.license();
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.allowance).toBe(10);
    expect(await reservedByPeriod(t, e.ent)).toEqual({ [end - HOUR]: 10, [end]: 10 });
  });

  it("a renewal with its usage reported settles the renewing device's license only", async () => {
    const e = await client({ quota: 20, licenseAllowance: 10, maxDevices: 5 });
    const a = await e.device();
    const b = await e.device();
    expect((await a.license()).status).toBe(200);
    expect((await b.license()).status).toBe(200);
    t.h.clock.advance(30);
    expect(await a.report(3)).toBe("accepted");
    const renewed = await a.license();
    expect(renewed.status, JSON.stringify(renewed.body)).toBe(200);
    expect(renewed.body.allowance).toBe(7); // 20 − 3 reported − 10 still held by b
    expect(await releasedAt(t, b.jti())).toBeNull();
    expect(await reservedByPeriod(t, e.ent)).toEqual({ [period()]: 20 });
    expect((await (await e.device()).license()).body.error.code).toBe("ERR_QUOTA_EXHAUSTED");
  });
});
