import { beforeAll, describe, expect, it } from "vitest";
import { DIALECTS, freshPostgres } from "./databases.js";
import { grant, type Harness, registerDigits, startHarness, TestDevice } from "./harness.js";

const model = { id: "digits", version: 1 };
const jtiOf = (license: string) =>
  JSON.parse(Buffer.from(license.split(".")[1] as string, "base64url").toString()).jti as string;

describe.each(DIALECTS)("license revocation and device release (%s)", (dialect) => {
  let h: Harness;
  let licensor: { id: string; token: string };
  let auditor: { id: string; token: string };
  let digest: string;

  beforeAll(async () => {
    h = await startHarness(dialect === "postgres" ? { database: await freshPostgres() } : {});
    const publisher = await h.principal("pub", ["publisher"]);
    licensor = await h.principal("lic", ["licensor"]);
    auditor = await h.principal("aud", ["auditor"]);
    ({ digest } = await registerDigits(h, publisher));
  });

  async function licensed(over: Record<string, unknown> = {}) {
    const client = await h.principal(`c${Math.random()}`, ["client"]);
    const ent = await grant(h, licensor.token, client.id, over);
    const device = await TestDevice.create();
    const first = await device.license(h, client.token, { model, manifestDigest: digest });
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    return { client, ent, device, jti: jtiOf(first.body.license) };
  }
  const renew = (x: { device: TestDevice; client: { token: string } }) =>
    x.device.license(h, x.client.token, { model, manifestDigest: digest });
  const actions = async () =>
    (await h.call("GET", "/v1/audit?limit=1000", auditor.token)).body.entries as {
      action: string;
      subject: string;
    }[];

  it("a revoked license cannot renew: the same device is refused with ERR_LICENSE_REVOKED, every time", async () => {
    const x = await licensed();
    expect((await h.call("POST", `/v1/licenses/${x.jti}/revoke`, licensor.token)).status).toBe(200);
    for (let i = 0; i < 3; i++) {
      const r = await renew(x);
      expect(r.status).toBe(403);
      expect(r.body.error.code).toBe("ERR_LICENSE_REVOKED");
    }
    // Expiry changes nothing: the block is on the device, not on the license row's lifetime.
    h.clock.advance(2 * 3600);
    expect((await renew(x)).body.error.code).toBe("ERR_LICENSE_REVOKED");
    // Another device of the same principal is not affected.
    const other = await TestDevice.create();
    expect((await other.license(h, x.client.token, { model, manifestDigest: digest })).status).toBe(200);
  });

  it("releasing the device frees its slot (audited) and ends the block a license revocation put on it", async () => {
    const x = await licensed({ maxDevices: 1 });
    await h.call("POST", `/v1/licenses/${x.jti}/revoke`, licensor.token);
    const newcomer = await TestDevice.create();
    expect(
      (await newcomer.license(h, x.client.token, { model, manifestDigest: digest })).body.error.code,
    ).toBe("ERR_DEVICE_LIMIT");
    h.clock.advance(1); // times are seconds: the release comes after the revoked license was issued
    const released = await h.call(
      "POST",
      `/v1/entitlements/${x.ent}/devices/${x.device.jkt}/release`,
      licensor.token,
    );
    expect(released.status).toBe(200);
    expect((await actions()).some((e) => e.action === "device.release" && e.subject === x.device.jkt)).toBe(
      true,
    );
    expect((await newcomer.license(h, x.client.token, { model, manifestDigest: digest })).status).toBe(200);
    // The released device is back in line for a slot like any other: the limit (1) is full now.
    expect((await renew(x)).body.error.code).toBe("ERR_DEVICE_LIMIT");
    const again = await h.call(
      "POST",
      `/v1/entitlements/${x.ent}/devices/${x.device.jkt}/release`,
      licensor.token,
    );
    expect(again.status).toBe(404);
    // Once it holds a slot again, the revocation from before its release no longer blocks it.
    await h.call("POST", `/v1/entitlements/${x.ent}/devices/${newcomer.jkt}/release`, licensor.token);
    const back = await renew(x);
    expect(back.status, JSON.stringify(back.body)).toBe(200);
  });

  it("a revoked device released from an entitlement stays revoked, but no longer holds a slot", async () => {
    const x = await licensed({ maxDevices: 1 });
    await h.call("POST", `/v1/devices/${x.device.jkt}/revoke`, licensor.token);
    await h.call("POST", `/v1/entitlements/${x.ent}/devices/${x.device.jkt}/release`, licensor.token);
    expect((await renew(x)).body.error.code).toBe("ERR_DEVICE_REVOKED");
    const replacement = await TestDevice.create();
    expect((await replacement.license(h, x.client.token, { model, manifestDigest: digest })).status).toBe(
      200,
    );
    const row = await h.server.ctx.db.kysely
      .selectFrom("entitlements")
      .select("devices_used")
      .where("id", "=", x.ent)
      .executeTakeFirstOrThrow();
    expect(row.devices_used).toBe(1);
  });

  it("only licensors release devices", async () => {
    const x = await licensed();
    const path = `/v1/entitlements/${x.ent}/devices/${x.device.jkt}/release`;
    expect((await h.call("POST", path, x.client.token)).body.error.code).toBe("ERR_FORBIDDEN");
    expect((await h.call("POST", path, h.admin)).body.error.code).toBe("ERR_FORBIDDEN");
  });
});
