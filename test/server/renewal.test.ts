import { beforeAll, describe, expect, it } from "vitest";
import { signUsageReport, usageGenesis } from "../../src/core/usage-report.js";
import { DIALECTS, freshPostgres } from "./databases.js";
import { grant, type Harness, registerDigits, startHarness, TestDevice } from "./harness.js";

const model = { id: "digits", version: 1 };

describe.each(DIALECTS)("revocation and overdue reports take effect at renewal (%s)", (dialect) => {
  let h: Harness;
  let licensor: { id: string; token: string };
  let digest: string;

  beforeAll(async () => {
    h = await startHarness(dialect === "postgres" ? { database: await freshPostgres() } : {});
    const publisher = await h.principal("pub", ["publisher"]);
    licensor = await h.principal("lic", ["licensor"]);
    ({ digest } = await registerDigits(h, publisher));
  });

  async function licensed() {
    const client = await h.principal(`c${Math.random()}`, ["client"]);
    const ent = await grant(h, licensor.token, client.id);
    const device = await TestDevice.create();
    const first = await device.license(h, client.token, { model, manifestDigest: digest });
    expect(first.status).toBe(200);
    return { client, ent, device, first };
  }
  const renew = (x: Awaited<ReturnType<typeof licensed>>) =>
    x.device.license(h, x.client.token, { model, manifestDigest: digest });

  it("renews while nothing is revoked", async () => {
    const x = await licensed();
    expect((await renew(x)).status).toBe(200);
  });

  it("entitlement revoked → next renewal refused", async () => {
    const x = await licensed();
    expect((await h.call("POST", `/v1/entitlements/${x.ent}/revoke`, licensor.token)).status).toBe(200);
    expect((await renew(x)).body.error.code).toBe("ERR_ENTITLEMENT_REVOKED");
  });

  it("device revoked → next renewal refused", async () => {
    const x = await licensed();
    expect((await h.call("POST", `/v1/devices/${x.device.jkt}/revoke`, licensor.token)).status).toBe(200);
    expect((await renew(x)).body.error.code).toBe("ERR_DEVICE_REVOKED");
  });

  it("entitlement expired → refused", async () => {
    const client = await h.principal("short", ["client"]);
    await grant(h, licensor.token, client.id, { expiresAt: h.clock.now() + 100 });
    const d = await TestDevice.create();
    expect((await d.license(h, client.token, { model, manifestDigest: digest })).status).toBe(200);
    h.clock.advance(101);
    expect((await d.license(h, client.token, { model, manifestDigest: digest })).body.error.code).toBe(
      "ERR_ENTITLEMENT_EXPIRED",
    );
  });

  it("overdue usage reports block renewal until they arrive", async () => {
    const x = await licensed();
    h.clock.advance(1201); // grace = 2 × license TTL (600 s)
    expect((await renew(x)).body.error.code).toBe("ERR_USAGE_OVERDUE");
    const jti = JSON.parse(Buffer.from(x.first.body.license.split(".")[1], "base64url").toString()).jti;
    const report = await signUsageReport(x.device.sign.privateKey, x.device.jkt, {
      lic: jti,
      seq: 1,
      prev: await usageGenesis(x.device.jkt),
      count: 3,
      from: h.clock.now() - 1000,
      to: h.clock.now(),
      iat: h.clock.now(),
    });
    const ack = await h.call("POST", "/v1/usage", x.client.token, { reports: [report] });
    expect(ack.body.results[0].status).toBe("accepted");
    expect((await renew(x)).status).toBe(200);
  });

  it("the licensor cannot read content keys: no route returns them", async () => {
    const models = await h.call("GET", "/v1/models", licensor.token);
    expect(JSON.stringify(models.body)).not.toMatch(/wrapped|cek|content_key/i);
  });
});
