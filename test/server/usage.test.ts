import { CompactSign } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import {
  signUsageReport,
  type UsageClaims,
  usageGenesis,
  usageReportHash,
} from "../../src/core/usage-report.js";
import { decodeReport } from "../../src/server/usage/decode-report.js";
import { DIALECTS, freshPostgres } from "./databases.js";
import { grant, type Harness, registerDigits, startHarness, TestDevice } from "./harness.js";

const model = { id: "digits", version: 1 };

describe.each(DIALECTS)("POST /v1/usage (%s)", (dialect) => {
  let h: Harness;
  let client: { id: string; token: string };
  let licensor: { id: string; token: string };
  let auditor: { id: string; token: string };
  let digest: string;

  beforeAll(async () => {
    h = await startHarness(dialect === "postgres" ? { database: await freshPostgres() } : {});
    const publisher = await h.principal("pub", ["publisher"]);
    licensor = await h.principal("lic", ["licensor"]);
    client = await h.principal("client", ["client"]);
    auditor = await h.principal("aud", ["auditor"]);
    ({ digest } = await registerDigits(h, publisher));
    await grant(h, licensor.token, client.id, { maxDevices: 10, licenseAllowance: 50 });
  });

  /** A licensed device with a helper that signs its next report in the chain. */
  async function reporter() {
    const device = await TestDevice.create();
    const r = await device.license(h, client.token, { model, manifestDigest: digest });
    const jti = JSON.parse(Buffer.from(r.body.license.split(".")[1], "base64url").toString()).jti as string;
    let seq = 0;
    let prev = await usageGenesis(device.jkt);
    return {
      device,
      jti,
      async next(count: number, over: Partial<UsageClaims> = {}, key = device.sign.privateKey) {
        const claims = {
          lic: jti,
          seq: seq + 1,
          prev,
          count,
          from: h.clock.now() - 60,
          to: h.clock.now(),
          iat: h.clock.now(),
          ...over,
        };
        const token = await signUsageReport(key, device.jkt, claims);
        const commit = async () => {
          seq = claims.seq;
          prev = await usageReportHash(token);
        };
        return { token, commit };
      },
    };
  }
  const post = (reports: string[], token = client.token) => h.call("POST", "/v1/usage", token, { reports });
  const db = () => h.server.ctx.db.kysely;

  it("accepts a chain, is idempotent on repeats, and the counts in the database match what was sent", async () => {
    const r = await reporter();
    const sent: string[] = [];
    let total = 0;
    for (const count of [3, 0, 7, 11]) {
      const rep = await r.next(count);
      await rep.commit();
      sent.push(rep.token);
      total += count;
    }
    const first = await post(sent);
    expect(first.body.results.map((x: { status: string }) => x.status)).toEqual([
      "accepted",
      "accepted",
      "accepted",
      "accepted",
    ]);
    const again = await post([...sent].reverse());
    expect(again.body.results.map((x: { status: string }) => x.status)).toEqual([
      "duplicate",
      "duplicate",
      "duplicate",
      "duplicate",
    ]);
    expect(again.body.head.seq).toBe(4);
    const lic = await db()
      .selectFrom("licenses")
      .select("used")
      .where("jti", "=", r.jti)
      .executeTakeFirstOrThrow();
    expect(lic.used).toBe(total);
    const rows = await db()
      .selectFrom("usage_reports")
      .selectAll()
      .where("device_id", "=", r.device.jkt)
      .orderBy("seq")
      .execute();
    expect(rows.map((x) => x.seq)).toEqual([1, 2, 3, 4]);
    expect(rows.reduce((n, x) => n + x.count, 0)).toBe(total);
  });

  it("records a gap and does not acknowledge it", async () => {
    const r = await reporter();
    const a = await r.next(1);
    await a.commit();
    await post([a.token]);
    const skipped = await r.next(1, { seq: 3 });
    const res = await post([skipped.token]);
    expect(res.status).toBe(409);
    expect(res.body.results[0]).toMatchObject({ status: "rejected", code: "ERR_USAGE_GAP" });
    const anomalies = await h.call("GET", "/v1/anomalies?limit=1000", auditor.token);
    expect(
      anomalies.body.anomalies.some(
        (x: { kind: string; device_id: string }) => x.kind === "usage_gap" && x.device_id === r.device.jkt,
      ),
    ).toBe(true);
  });

  it("records a fork (a different report at an acknowledged seq, or a broken prev)", async () => {
    const r = await reporter();
    const a = await r.next(2);
    const b = await r.next(5);
    await a.commit();
    await post([a.token]);
    const b2 = await r.next(6);
    await b2.commit();
    await post([b2.token]);
    const forked = await post([b.token]); // seq 1 again with different content? b is seq 1 with count 5
    expect(forked.body.results[0].code).toBe("ERR_USAGE_FORK");
    const badPrev = await r.next(1, { prev: "A".repeat(43) });
    expect((await post([badPrev.token])).body.results[0].code).toBe("ERR_USAGE_FORK");
    const kinds = (
      await db().selectFrom("anomalies").select("kind").where("device_id", "=", r.device.jkt).execute()
    ).map((x) => x.kind);
    expect(kinds).toContain("usage_fork");
  });

  it("refuses a bad signature, a report from the wrong device, and one for a revoked license", async () => {
    const r = await reporter();
    const other = await TestDevice.create();
    const forged = await r.next(1, {}, other.sign.privateKey);
    expect((await post([forged.token])).body.results[0].code).toBe("ERR_USAGE_INVALID");
    const b = await reporter();
    const stolen = await signUsageReport(b.device.sign.privateKey, b.device.jkt, {
      lic: r.jti,
      seq: 1,
      prev: await usageGenesis(b.device.jkt),
      count: 1,
      from: 0,
      to: 1,
      iat: 1,
    });
    expect((await post([stolen])).body.results[0].code).toBe("ERR_USAGE_WRONG_DEVICE");
    const stranger = await h.principal("stranger", ["client"]);
    const mine = await r.next(1);
    expect((await post([mine.token], stranger.token)).body.results[0].code).toBe("ERR_USAGE_WRONG_DEVICE");
    await h.call("POST", `/v1/licenses/${r.jti}/revoke`, licensor.token);
    expect((await post([mine.token])).body.results[0].code).toBe("ERR_LICENSE_REVOKED");
    const used = await db()
      .selectFrom("licenses")
      .select("used")
      .where("jti", "=", r.jti)
      .executeTakeFirstOrThrow();
    expect(used.used).toBe(0);
  });

  it("names the check that refused a report: not a compact JWS, a signature by another key", async () => {
    // Through the route either refusal is ERR_USAGE_INVALID whichever check made it (a crash in
    // a later check is mapped to it too): only the decoder's own error says which check it was.
    const me = { id: client.id, roles: ["client"], via: "api-key" as const };
    const refusal = (token: string) => decodeReport(h.server.ctx, me, token).catch((e: unknown) => e);
    expect(await refusal("not-a-jws")).toMatchObject({
      code: "ERR_USAGE_INVALID",
      message: "usage report: not a compact JWS",
    });
    const r = await reporter();
    const forged = await r.next(1, {}, (await TestDevice.create()).sign.privateKey);
    expect(await refusal(forged.token)).toMatchObject({
      code: "ERR_USAGE_INVALID",
      message: "usage report: signature does not verify under the device key",
    });
  });

  it("flags usage beyond the license's allowance and a clock set back", async () => {
    const r = await reporter();
    const big = await r.next(60);
    await big.commit();
    await post([big.token]);
    const back = await r.next(1, { from: h.clock.now() - 100_000, to: h.clock.now() - 99_000 });
    await back.commit();
    await post([back.token]);
    const kinds = (
      await db().selectFrom("anomalies").select("kind").where("device_id", "=", r.device.jkt).execute()
    ).map((x) => x.kind);
    expect(kinds).toEqual(expect.arrayContaining(["quota_overrun", "clock_rollback"]));
  });

  it("refuses a report signed by the device key whose header names a key source or zip", async () => {
    const r = await reporter();
    const claims = {
      lic: r.jti,
      seq: 1,
      prev: await usageGenesis(r.device.jkt),
      count: 1,
      from: h.clock.now() - 10,
      to: h.clock.now(),
      iat: h.clock.now(),
    };
    const signed = async (extra: Record<string, unknown>) =>
      new CompactSign(new TextEncoder().encode(JSON.stringify(claims)))
        .setProtectedHeader({
          alg: "ES256",
          typ: "modelvault-usage+jwt",
          kid: r.device.jkt,
          ...extra,
        } as never)
        .sign(r.device.sign.privateKey);
    for (const extra of [
      { jku: "https://evil.example/jwks" },
      { x5u: "https://evil.example/x" },
      { x5c: ["MIIB"] },
      { jwk: r.device.signJwk },
      { zip: "DEF" },
    ]) {
      const res = await post([await signed(extra)]);
      expect(res.body.results[0], JSON.stringify(extra)).toMatchObject({
        status: "rejected",
        code: "ERR_USAGE_INVALID",
      });
    }
    expect((await post([await signed({})])).body.results[0].status).toBe("accepted"); // the control
  });

  it("tells one lost write (resync, a warning) from a restored older state (rollback, an alert)", async () => {
    const r = await reporter();
    const one = await r.next(1);
    await one.commit();
    const two = await r.next(2);
    await two.commit();
    await post([one.token, two.token]);
    // The device lost its last write: it re-signs seq 2 from the same predecessor, with another count.
    const rewritten = await signUsageReport(r.device.sign.privateKey, r.device.jkt, {
      lic: r.jti,
      seq: 2,
      prev: await usageReportHash(one.token),
      count: 5,
      from: h.clock.now() - 30,
      to: h.clock.now(),
      iat: h.clock.now(),
    });
    expect((await post([rewritten])).body.results[0].code).toBe("ERR_USAGE_FORK");
    // A profile restored from before seq 1 was acknowledged signs another seq 1.
    const restored = await signUsageReport(r.device.sign.privateKey, r.device.jkt, {
      lic: r.jti,
      seq: 1,
      prev: await usageGenesis(r.device.jkt),
      count: 9,
      from: h.clock.now() - 30,
      to: h.clock.now(),
      iat: h.clock.now(),
    });
    expect((await post([restored])).body.results[0].code).toBe("ERR_USAGE_FORK");
    const found = await db()
      .selectFrom("anomalies")
      .select(["kind", "severity"])
      .where("device_id", "=", r.device.jkt)
      .orderBy("id")
      .execute();
    expect(found).toEqual([
      { kind: "usage_resync", severity: "warning" },
      { kind: "usage_rollback", severity: "alert" },
    ]);
  });

  it("a batch of 100 rejected reports writes one audit entry and one anomaly per kind, not one per report", async () => {
    const r = await reporter();
    const first = await r.next(1);
    await first.commit();
    await post([first.token]);
    const count = async (t: "audit_log" | "anomalies") =>
      Number(
        (
          await db()
            .selectFrom(t)
            .select((eb) => eb.fn.countAll().as("n"))
            .executeTakeFirstOrThrow()
        ).n,
      );
    const before = { audit: await count("audit_log"), anomalies: await count("anomalies") };
    // 50 gaps and 50 forks, each validly signed.
    const batch: string[] = [];
    for (let i = 0; i < 50; i++) batch.push((await r.next(1, { seq: 10 + i })).token);
    for (let i = 0; i < 50; i++) batch.push((await r.next(1, { prev: "A".repeat(43), count: i })).token);
    const res = await post(batch);
    expect(res.body.results.every((x: { status: string }) => x.status === "rejected")).toBe(true);
    expect((await count("anomalies")) - before.anomalies).toBe(2); // usage_gap, usage_fork
    // One "usage.accept denied" summary, plus each anomaly's own entry.
    expect((await count("audit_log")) - before.audit).toBe(3);
    const summary = await db()
      .selectFrom("audit_log")
      .select("detail")
      .where("action", "=", "usage.accept")
      .where("outcome", "=", "denied")
      .orderBy("seq", "desc")
      .executeTakeFirstOrThrow();
    expect(JSON.parse(summary.detail)).toMatchObject({
      reports: 100,
      codes: { ERR_USAGE_GAP: 50, ERR_USAGE_FORK: 50 },
    });
  });

  it("bounds batches: more than 100 reports, or a report over 4 KiB, is a 400", async () => {
    expect((await post(Array.from({ length: 101 }, () => "x"))).body.error.code).toBe("ERR_REQUEST_INVALID");
    expect((await post(["x".repeat(5000)])).body.error.code).toBe("ERR_REQUEST_INVALID");
  });
});
