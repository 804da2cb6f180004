import { beforeAll, describe, expect, it } from "vitest";
import { DIALECTS } from "./databases.js";
import { grant, TestDevice } from "./harness.js";
import { releasedAt, reportingDevice, startTenancy, type Tenancy, tenant } from "./tenancy.js";

/**
 * Two devices whose thumbprints sort the same way byte-wise and case-blind: SQLite returns an
 * entitlement's slots in key order, so the first is the one a lookup that forgot the device
 * would find.
 */
async function sortedDevices(): Promise<[TestDevice, TestDevice]> {
  for (;;) {
    const [a, b] = [await TestDevice.create(), await TestDevice.create()].sort((x, y) =>
      x.jkt < y.jkt ? -1 : 1,
    ) as [TestDevice, TestDevice];
    if (a.jkt.toLowerCase() < b.jkt.toLowerCase()) return [a, b];
  }
}

describe.each(DIALECTS)("devices, versions and entitlements do not mix (%s)", (dialect) => {
  let t: Tenancy;
  beforeAll(async () => {
    t = await startTenancy(dialect);
  });

  /** One client entitled twice: to digits v1 (E1) and, separately, to v2 and later (E2). */
  async function twoEntitlements(over: Record<string, unknown> = {}) {
    const { client, ent: e1 } = await tenant(t, { maxVersion: 1, ...over });
    const e2 = await grant(t.h, t.licensor.token, client.id, { minVersion: 2, ...over });
    return { client, e1, e2, device: (d?: TestDevice) => reportingDevice(t, client.token, d) };
  }

  it("an entitlement from version 2 on does not license version 1", async () => {
    const { client } = await tenant(t, { minVersion: 2 });
    const d = await reportingDevice(t, client.token);
    expect((await d.license(1)).body.error.code).toBe("ERR_ENTITLEMENT_NOT_FOUND");
    expect((await d.license(2)).status).toBe(200);
  });

  it("an entitlement to another model does not license this one", async () => {
    const { client } = await tenant(t, { modelId: "another-model" });
    const d = await reportingDevice(t, client.token);
    expect((await d.license()).body.error.code).toBe("ERR_ENTITLEMENT_NOT_FOUND");
  });

  it("a device key registered by one principal is refused to another", async () => {
    const device = await TestDevice.create();
    const owner = await reportingDevice(t, (await tenant(t)).client.token, device);
    expect((await owner.license()).status).toBe(200);
    const thief = await reportingDevice(t, (await tenant(t)).client.token, device);
    expect((await thief.license()).body.error).toMatchObject({
      code: "ERR_DEVICE_REVOKED",
      message: "this device key belongs to another principal",
    });
  });

  it("one device's license request does not rewrite another device's record", async () => {
    const a = await reportingDevice(t, (await tenant(t)).client.token);
    const b = await reportingDevice(t, (await tenant(t)).client.token);
    expect((await a.license()).status).toBe(200);
    const aSeen = t.h.clock.now();
    t.h.clock.advance(5);
    expect((await b.license()).status).toBe(200);
    const rows = await t.h.server.ctx.db.kysely
      .selectFrom("devices")
      .select(["id", "last_seen", "agreement_jkt"])
      .where("id", "in", [a.device.jkt, b.device.jkt])
      .orderBy("last_seen")
      .execute();
    expect(rows.map((r) => ({ ...r, last_seen: Number(r.last_seen) }))).toEqual([
      { id: a.device.jkt, last_seen: aSeen, agreement_jkt: a.device.akt },
      { id: b.device.jkt, last_seen: aSeen + 5, agreement_jkt: b.device.akt },
    ]);
  });

  it("a license revoked on one entitlement blocks that entitlement only", async () => {
    const x = await twoEntitlements();
    const d = await x.device();
    expect((await d.license(1)).status).toBe(200);
    expect((await d.license(2)).status).toBe(200);
    const revoked = await t.h.call("POST", `/v1/licenses/${d.jti(1)}/revoke`, t.licensor.token);
    expect(revoked.status).toBe(200);
    expect((await d.license(1)).body.error.code).toBe("ERR_LICENSE_REVOKED");
    expect((await d.license(2)).status).toBe(200);
  });

  it("usage overdue on one entitlement does not hold up the device's first license on another", async () => {
    const x = await twoEntitlements();
    const d = await x.device();
    expect((await d.license(1)).status).toBe(200);
    t.h.clock.advance(61); // past the default report grace of 60 s
    expect((await d.license(1)).body.error.code).toBe("ERR_USAGE_OVERDUE");
    const other = await d.license(2);
    expect(other.status, JSON.stringify(other.body)).toBe(200);
  });

  it("a renewal with its usage reported settles that entitlement's license, not the other's", async () => {
    const x = await twoEntitlements();
    const d = await x.device();
    expect((await d.license(1)).status).toBe(200);
    expect((await d.license(2)).status).toBe(200);
    const first = d.jti(1);
    t.h.clock.advance(30);
    expect(await d.report(3, 1)).toBe("accepted");
    expect((await d.license(1)).status).toBe(200);
    expect(await releasedAt(t, first)).toBe(t.h.clock.now());
    expect(await releasedAt(t, d.jti(2))).toBeNull();
  });

  it("a settled license needs no usage report: the device licenses again without one", async () => {
    const short = { scopes: ["infer"], offlineSeconds: 0, licenseTtlSeconds: 600 };
    const { client } = await tenant(t, short);
    const d = await reportingDevice(t, client.token);
    expect((await d.license()).status).toBe(200);
    t.h.clock.advance(661); // unusable, and past the report grace
    expect((await (await reportingDevice(t, client.token)).license()).status).toBe(200); // settles d's
    expect(await releasedAt(t, d.jti())).not.toBeNull();
    const again = await d.license();
    expect(again.status, JSON.stringify(again.body)).toBe(200);
  });

  it("a device released and back takes a new slot: a revocation from before follows it from no other slot", async () => {
    const x = await twoEntitlements();
    const [otherDevice, device] = await sortedDevices();
    const d = await x.device(device);
    const other = await x.device(otherDevice);
    expect((await d.license(2)).status).toBe(200); // d's oldest slot, on E2
    t.h.clock.advance(1);
    expect((await other.license(1)).status).toBe(200); // E1's first slot in key order
    t.h.clock.advance(1);
    const first = await d.license(1);
    expect(first.status).toBe(200);
    await t.h.call("POST", `/v1/licenses/${d.jti(1)}/revoke`, t.licensor.token);
    expect((await d.license(1)).body.error.code).toBe("ERR_LICENSE_REVOKED");
    const release = `/v1/entitlements/${x.e1}/devices/${device.jkt}/release`;
    expect((await t.h.call("POST", release, t.licensor.token)).status).toBe(200);
    t.h.clock.advance(1);
    expect((await d.license(1)).status).toBe(200); // a new slot, newer than the revocation
    t.h.clock.advance(1);
    const again = await d.license(1); // the slot it holds on E1 now, not an older one elsewhere
    expect(again.status, JSON.stringify(again.body)).toBe(200);
  });
});
