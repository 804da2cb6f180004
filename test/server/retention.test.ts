import { describe, expect, it } from "vitest";
import { pruneRetained } from "../../src/server/db/retention.js";
import { DIALECTS, freshPostgres } from "./databases.js";
import { waitFor } from "./fault/serve-process.js";
import { grant, type Harness, registerDigits, startHarness, TestDevice } from "./harness.js";

const DAY = 86_400;
const model = { id: "digits", version: 1 };

/** Three licenses on three devices, reports for two, and old anomalies and evidence. */
async function traffic(h: Harness) {
  const publisher = await h.principal("pub", ["publisher"]);
  const licensor = await h.principal("lic", ["licensor"]);
  const client = await h.principal("c", ["client"]);
  const { digest } = await registerDigits(h, publisher);
  await grant(h, licensor.token, client.id, { maxDevices: 10 });
  const jtis: string[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await (await TestDevice.create()).license(h, client.token, { model, manifestDigest: digest });
    jtis.push(JSON.parse(Buffer.from(r.body.license.split(".")[1], "base64url").toString()).jti);
  }
  const [settled, revoked, open] = jtis as [string, string, string];
  const k = h.server.ctx.db.kysely;
  const now = h.clock.now();
  // Settled (allowance charged or returned); revoked (what refuses its device again); open.
  await k.updateTable("licenses").set({ released_at: now }).where("jti", "in", [settled, revoked]).execute();
  await k.updateTable("licenses").set({ revoked_at: now }).where("jti", "=", revoked).execute();
  for (const [seq, jti] of [settled, open].entries())
    await k
      .insertInto("usage_reports")
      .values({
        device_id: `dev-${seq}`,
        seq: 1,
        license_jti: jti,
        hash: `h${seq}`,
        prev: "p",
        count: 1,
        window_from: now,
        window_to: now,
        received_at: now,
      })
      .execute();
  await k
    .insertInto("anomalies")
    .values({
      kind: "usage_gap",
      severity: "warning",
      principal_id: null,
      device_id: null,
      license_jti: null,
      detail: "{}",
      created_at: now,
    })
    .execute();
  await k
    .insertInto("usage_evidence")
    .values({ device_id: "dev-0", hash: "e", seq: 1, kind: "fork", token: "t", received_at: now })
    .execute();
  return { settled, revoked, open };
}

async function counts(h: Harness) {
  const k = h.server.ctx.db.kysely;
  const n = async (
    table:
      | "licenses"
      | "usage_reports"
      | "quota_counters"
      | "anomalies"
      | "usage_evidence"
      | "audit_log"
      | "devices",
  ) =>
    Number(
      (
        await k
          .selectFrom(table)
          .select((eb) => eb.fn.countAll().as("n"))
          .executeTakeFirstOrThrow()
      ).n,
    );
  return {
    licenses: (await k.selectFrom("licenses").select("jti").execute()).map((r) => r.jti).sort(),
    usage_reports: await n("usage_reports"),
    quota_counters: await n("quota_counters"),
    anomalies: await n("anomalies"),
    usage_evidence: await n("usage_evidence"),
    audit_log: await n("audit_log"),
    devices: await n("devices"),
  };
}

describe.each(DIALECTS)("retention of traffic-made rows (L3, %s)", (dialect) => {
  const database = async () => (dialect === "postgres" ? { database: await freshPostgres() } : {});

  it("past the retention, maintenance deletes settled licenses with their reports, ended quota periods, anomalies and evidence; never the audit log, devices or revoked licenses", async () => {
    const h = await startHarness({ ...(await database()), options: { retentionDays: 1 } });
    const { settled, revoked, open } = await traffic(h);
    const before = await counts(h);
    // Within the retention (a day, counted from a row's own time) nothing goes.
    h.clock.advance(DAY - 10);
    expect(await pruneRetained(h.server.ctx.db, h.clock.now(), DAY)).toEqual({
      licenses: 0,
      usage_reports: 0,
      quota_counters: 0,
      anomalies: 0,
      usage_evidence: 0,
    });
    // A day after the licenses stopped being usable (10 minutes + an hour offline).
    h.clock.advance(600 + 3600 + 20);
    await waitFor(
      "maintenance to apply the retention",
      async () => (await counts(h)).anomalies === 0,
      10_000,
    );
    const after = await counts(h);
    expect(after).toEqual({
      licenses: [open, revoked].sort(),
      usage_reports: 1, // the open license's
      quota_counters: 1, // its period (a day from the start of the day) ended less than a day ago
      anomalies: 0,
      usage_evidence: 0,
      audit_log: after.audit_log,
      devices: before.devices,
    });
    expect(after.audit_log).toBeGreaterThanOrEqual(before.audit_log);
    expect(after.licenses).not.toContain(settled);
    // Once its period has ended a day ago, the quota counter goes too.
    h.clock.advance(DAY);
    expect(await pruneRetained(h.server.ctx.db, h.clock.now(), DAY)).toMatchObject({ quota_counters: 1 });
    expect((await counts(h)).quota_counters).toBe(0);
  });

  it("retentionDays: null keeps everything", async () => {
    const h = await startHarness({ ...(await database()), options: { retentionDays: null } });
    await traffic(h);
    const before = await counts(h);
    h.clock.advance(1000 * DAY);
    await new Promise((r) => setTimeout(r, 2500)); // a maintenance tick passes
    expect(await counts(h)).toEqual({ ...before, audit_log: (await counts(h)).audit_log });
  });
});
