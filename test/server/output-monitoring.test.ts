import { beforeAll, describe, expect, it } from "vitest";
import { seededRandom } from "../../models/digits/dataset.js";
import { signUsageReport, usageGenesis, usageReportHash } from "../../src/core/usage-report.js";
import { chiSquareSurvival, compareDistributions } from "../../src/server/monitoring/drift.js";
import { DIALECTS, freshPostgres } from "./databases.js";
import { grant, type Harness, registerDigits, startHarness, TestDevice } from "./harness.js";

/** Class shares of the digits held-out split, roughly: what ordinary use looks like. */
const BASELINE = [148, 170, 150, 153, 146, 135, 149, 156, 143, 150];

/** n arg-max classes drawn from the baseline's shares (seeded). */
function ordinary(n: number, seed: number): number[] {
  const random = seededRandom(seed);
  const total = BASELINE.reduce((a, b) => a + b, 0);
  const counts = new Array(10).fill(0);
  for (let i = 0; i < n; i++) {
    let r = random() * total;
    let k = 0;
    while (r >= (BASELINE[k] as number)) r -= BASELINE[k++] as number;
    counts[k]++;
  }
  return counts;
}

describe("drift measures", () => {
  it("chi-square survival matches tables; PSI is near zero for the same shares and large for one class", () => {
    expect(chiSquareSurvival(3.841, 1)).toBeCloseTo(0.05, 3);
    expect(chiSquareSurvival(16.919, 9)).toBeCloseTo(0.05, 3);
    expect(chiSquareSurvival(27.877, 9)).toBeCloseTo(0.001, 4);
    expect(compareDistributions(BASELINE, BASELINE).psi).toBeCloseTo(0, 6);
    const probe = compareDistributions([0, 0, 0, 150, 0, 0, 0, 0, 0, 0], BASELINE);
    expect(probe.psi).toBeGreaterThan(2);
    expect(probe.p).toBeLessThan(1e-12);
  });
});

describe.each(DIALECTS)("output monitoring (%s)", (dialect) => {
  let h: Harness;
  let client: { id: string; token: string };
  let licensor: { id: string; token: string };
  let auditor: { id: string; token: string };
  const digests: Record<string, string> = {};

  beforeAll(async () => {
    h = await startHarness(dialect === "postgres" ? { database: await freshPostgres() } : {});
    const publisher = await h.principal("pub", ["publisher"]);
    licensor = await h.principal("lic", ["licensor"]);
    client = await h.principal("client", ["client"]);
    auditor = await h.principal("aud", ["auditor"]);
    const classes = { output: "probabilities", kind: "classes" as const, classes: 10 };
    digests.declared = (
      await registerDigits(h, publisher, 1, { monitoring: { outputs: [{ ...classes, baseline: BASELINE }] } })
    ).digest;
    digests.learned = (await registerDigits(h, publisher, 2, { monitoring: { outputs: [classes] } })).digest;
    digests.plain = (await registerDigits(h, publisher, 3)).digest;
    await grant(h, licensor.token, client.id, { maxDevices: 100, licenseAllowance: 10_000, quota: 1e9 });
  });

  /** A new device licensed for `version`, sending one report with these arg-max counts. */
  async function report(version: number, agg: number[][] | undefined, count = 150) {
    const device = await TestDevice.create();
    const digest = digests[{ 1: "declared", 2: "learned", 3: "plain" }[version] as string];
    const r = await device.license(h, client.token, {
      model: { id: "digits", version },
      manifestDigest: digest,
    });
    const lic = JSON.parse(Buffer.from(r.body.license.split(".")[1], "base64url").toString()).jti as string;
    const now = h.clock.now();
    const token = await signUsageReport(device.sign.privateKey, device.jkt, {
      lic,
      seq: 1,
      prev: await usageGenesis(device.jkt),
      count,
      from: now - 60,
      to: now,
      iat: now,
      ...(agg ? { agg } : {}),
    });
    const sent = await h.call("POST", "/v1/usage", client.token, { reports: [token] });
    /** The device's second report, with these counts. */
    const again = async (counts: number[][]) => {
      const t = h.clock.now();
      const second = await signUsageReport(device.sign.privateKey, device.jkt, {
        lic,
        seq: 2,
        prev: await usageReportHash(token),
        count,
        from: t - 30,
        to: t,
        iat: t,
        agg: counts,
      });
      return h.call("POST", "/v1/usage", client.token, { reports: [second] });
    };
    return { device, sent, again };
  }

  const anomalies = async (kind: string) =>
    (await h.call("GET", "/v1/anomalies?limit=1000", auditor.token)).body.anomalies.filter(
      (a: { kind: string }) => a.kind === kind,
    ) as { kind: string; device_id: string | null; subject: string; detail: Record<string, unknown> }[];

  it("ordinary devices raise nothing; a device pushed to one class is an outlier, once; rows hold only counts", async () => {
    for (let i = 0; i < 8; i++) {
      const { sent } = await report(1, [ordinary(150, 100 + i)]);
      expect(sent.body.results[0].status).toBe("accepted");
    }
    expect(await anomalies("output_outlier")).toEqual([]);
    expect(await anomalies("output_drift")).toEqual([]);

    const probe = await report(1, [[0, 0, 0, 0, 0, 0, 0, 150, 0, 0]]);
    expect(probe.sent.body.results[0].status).toBe("accepted");
    const found = await anomalies("output_outlier");
    expect(found).toHaveLength(1);
    expect(found[0]?.device_id).toBe(probe.device.jkt);
    expect(found[0]?.detail).toMatchObject({ against: "other devices", model: "digits", version: 1 });
    expect(found[0]?.detail.psi as number).toBeGreaterThan(1);
    // While it stays open, the same device probing on adds no second anomaly.
    expect((await probe.again([[0, 0, 0, 0, 0, 0, 0, 150, 0, 0]])).body.results[0].status).toBe("accepted");
    expect(await anomalies("output_outlier")).toHaveLength(1);

    // The server keeps counts per report and output, nothing per inference, no inputs or outputs.
    const rows = await h.server.ctx.db.kysely
      .selectFrom("output_aggregates")
      .selectAll()
      .where("device_id", "=", probe.device.jkt)
      .orderBy("seq")
      .execute();
    expect(rows.map((r) => r.seq)).toEqual([1, 2]);
    expect(Object.keys(rows[0] as object).sort()).toEqual([
      "counts",
      "device_id",
      "entitlement_id",
      "model_id",
      "model_version",
      "output",
      "received_at",
      "seq",
      "total",
    ]);
    expect(JSON.parse(rows[0]?.counts as string)).toEqual([0, 0, 0, 0, 0, 0, 0, 150, 0, 0]);
    expect(rows[0]?.total).toBe(150);
  });

  it("aggregates that do not fit the signed policy are refused; a model without one stores none", async () => {
    const wrongBins = await report(1, [[150, 0]]);
    expect(wrongBins.sent.body.results[0]).toMatchObject({ status: "rejected", code: "ERR_USAGE_INVALID" });
    const belowFloor = await report(1, [[1, 1, 1, 0, 0, 0, 0, 0, 0, 0]]);
    expect(belowFloor.sent.body.results[0]).toMatchObject({ status: "rejected", code: "ERR_USAGE_INVALID" });
    const malformed = await report(1, [[-1, 0, 0, 0, 0, 0, 0, 0, 0, 200]]);
    expect(malformed.sent.body.results[0]).toMatchObject({ status: "rejected", code: "ERR_USAGE_INVALID" });
    const plain = await report(3, [ordinary(150, 7)]);
    expect(plain.sent.body.results[0].status).toBe("accepted");
    const stored = await h.server.ctx.db.kysely
      .selectFrom("output_aggregates")
      .select("seq")
      .where("device_id", "in", [wrongBins.device.jkt, belowFloor.device.jkt, plain.device.jkt])
      .execute();
    expect(stored).toEqual([]);
  });

  it("without a declared baseline, the first days are learned; a model drifting later is flagged", async () => {
    for (let i = 0; i < 3; i++) await report(2, [ordinary(150, 200 + i)]);
    h.clock.advance(3 * 86400 + 10);
    // Everyone now sees mostly 1s: the model drifts; no device stands out from the others.
    const drifted = (seed: number) => ordinary(150, seed).map((c, k) => (k === 1 ? c + 120 : c));
    for (let i = 0; i < 3; i++) await report(2, [drifted(300 + i)]);
    const drift = (await anomalies("output_drift")).filter((a) => a.detail.version === 2);
    expect(drift.map((a) => a.detail.scope).sort()).toEqual(["entitlement", "model"]);
    expect(drift.find((a) => a.detail.scope === "model")).toMatchObject({
      subject: "digits@2",
      detail: { against: "learned baseline" },
    });
    expect((await anomalies("output_outlier")).filter((a) => a.detail.version === 2)).toEqual([]);
  });
});
