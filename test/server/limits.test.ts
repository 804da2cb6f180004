import { describe, expect, it } from "vitest";
import { DIALECTS, freshPostgres } from "./databases.js";
import { grant, registerDigits, startHarness, TestDevice } from "./harness.js";

const model = { id: "digits", version: 1 };

describe.each(DIALECTS)("limits under concurrency (%s)", (dialect) => {
  async function setup(entitlement: Record<string, unknown>) {
    const h = await startHarness(dialect === "postgres" ? { database: await freshPostgres() } : {});
    const publisher = await h.principal("pub", ["publisher"]);
    const licensor = await h.principal("lic", ["licensor"]);
    const client = await h.principal("client", ["client"]);
    const { digest } = await registerDigits(h, publisher);
    const ent = await grant(h, licensor.token, client.id, entitlement);
    const auditor = await h.principal("aud", ["auditor"]);
    return { h, client, digest, ent, auditor };
  }

  /** 50 devices, each already holding a nonce, fire their license requests at once. */
  async function burst(h: Awaited<ReturnType<typeof setup>>["h"], token: string, digest: string, n = 50) {
    const devices = await Promise.all(Array.from({ length: n }, () => TestDevice.create()));
    const nonce = (await h.call("POST", "/v1/licenses", token, {})).headers.get("dpop-nonce") ?? undefined;
    for (const d of devices) d.nonce = nonce;
    return Promise.all(devices.map((d) => d.license(h, token, { model, manifestDigest: digest })));
  }

  it("50 simultaneous requests never exceed the device limit", async () => {
    const { h, client, digest, ent } = await setup({ maxDevices: 5, quota: 100_000, licenseAllowance: 10 });
    const results = await burst(h, client.token, digest);
    const ok = results.filter((r) => r.status === 200).length;
    const limited = results.filter((r) => r.body?.error?.code === "ERR_DEVICE_LIMIT").length;
    expect(ok).toBe(5);
    expect(limited).toBe(45);
    const row = await h.server.ctx.db.kysely
      .selectFrom("entitlements")
      .select("devices_used")
      .where("id", "=", ent)
      .executeTakeFirstOrThrow();
    expect(row.devices_used).toBe(5);
    const anomalies = await h.server.ctx.db.kysely
      .selectFrom("anomalies")
      .select("kind")
      .where("kind", "=", "device_limit")
      .execute();
    expect(anomalies.length).toBe(45);
  });

  it("50 simultaneous requests never reserve more than the quota", async () => {
    const { h, client, digest, ent } = await setup({ maxDevices: 100, quota: 25, licenseAllowance: 2 });
    const results = await burst(h, client.token, digest);
    const granted = results.filter((r) => r.status === 200).map((r) => r.body.allowance as number);
    expect(granted.reduce((a, b) => a + b, 0)).toBe(25);
    expect(granted.length).toBe(13); // 12 × 2 + 1
    expect(results.filter((r) => r.body?.error?.code === "ERR_QUOTA_EXHAUSTED").length).toBe(37);
    const counter = await h.server.ctx.db.kysely
      .selectFrom("quota_counters")
      .selectAll()
      .where("entitlement_id", "=", ent)
      .executeTakeFirstOrThrow();
    expect(counter.reserved).toBe(25);
  });

  it("the same DPoP proof sent 50 times at once succeeds exactly once", async () => {
    const { h, client, digest } = await setup({ maxDevices: 100, quota: 100_000 });
    const d = await TestDevice.create();
    await d.license(h, client.token, { model, manifestDigest: digest });
    const proof = await d.proof(h);
    const results = await Promise.all(
      Array.from({ length: 50 }, () =>
        h.call(
          "POST",
          "/v1/licenses",
          client.token,
          { model, manifestDigest: digest, agreementKey: d.agreeJwk },
          { dpop: proof },
        ),
      ),
    );
    expect(results.filter((r) => r.status === 200).length).toBe(1);
    expect(results.filter((r) => r.body?.error?.code === "ERR_DPOP_REPLAY").length).toBe(49);
  });

  it("concurrent audited actions form one linear chain", async () => {
    const { h, auditor } = await setup({ maxDevices: 1, quota: 10 });
    await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        h.call("POST", "/v1/admin/principals", h.admin, { name: `p${i}` }),
      ),
    );
    const entries = (await h.call("GET", "/v1/audit?limit=1000", auditor.token)).body.entries as {
      seq: number;
    }[];
    expect(entries.map((e) => e.seq)).toEqual(entries.map((_, i) => i + 1));
    const { verifyAuditLog } = await import("../../src/server/audit/verify-audit.js");
    const jwks = (await h.call("GET", "/.well-known/jwks.json")).body;
    await expect(verifyAuditLog(entries as never, [], jwks)).resolves.toMatchObject({
      entries: entries.length,
    });
  });
});
