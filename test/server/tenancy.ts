/**
 * Shared by the tenancy tests (tenancy-*.test.ts): a server with digits v1 and v2, clients with
 * their entitlements, devices that report usage like the runtime, and the rows to compare. Each
 * test makes its own principals and entitlements, so what it counts is its own.
 */
import { signUsageReport, usageGenesis, usageReportHash } from "../../src/core/usage-report.js";
import { freshPostgres } from "./databases.js";
import { grant, type Harness, registerDigits, startHarness, TestDevice } from "./harness.js";

export const jtiOf = (license: string) =>
  JSON.parse(Buffer.from(license.split(".")[1] as string, "base64url").toString()).jti as string;

export interface Tenancy {
  h: Harness;
  licensor: { id: string; token: string };
  /** Manifest digest of digits, by version. */
  digests: Record<number, string>;
}

export async function startTenancy(dialect: "sqlite" | "postgres"): Promise<Tenancy> {
  const h = await startHarness(dialect === "postgres" ? { database: await freshPostgres() } : {});
  const publisher = await h.principal("pub", ["publisher"]);
  const licensor = await h.principal("lic", ["licensor"]);
  const digests = {
    1: (await registerDigits(h, publisher, 1)).digest,
    2: (await registerDigits(h, publisher, 2)).digest,
  };
  return { h, licensor, digests };
}

/** A new client principal and one entitlement to digits (`over` changes the grant). */
export async function tenant(t: Tenancy, over: Record<string, unknown> = {}) {
  const client = await t.h.principal(`c${Math.random()}`, ["client"]);
  const ent = await grant(t.h, t.licensor.token, client.id, over);
  return { client, ent };
}

/** A device of the principal holding `token`: asks for licenses, remembers them, reports usage. */
export async function reportingDevice(t: Tenancy, token: string, device?: TestDevice) {
  const d = device ?? (await TestDevice.create());
  const { h } = t;
  let seq = 0;
  let prev = await usageGenesis(d.jkt);
  const jtis: Record<number, string> = {};
  return {
    device: d,
    /** The last license this device got for `version`. */
    jti: (version = 1) => jtis[version] as string,
    async license(version = 1) {
      const r = await d.license(h, token, {
        model: { id: "digits", version },
        manifestDigest: t.digests[version],
      });
      if (r.status === 200) jtis[version] = jtiOf(r.body.license);
      return r;
    },
    /** Reports `count` inferences on the last license for `version`; returns the result's status. */
    async report(count: number, version = 1): Promise<string> {
      const report = await signUsageReport(d.sign.privateKey, d.jkt, {
        lic: jtis[version] as string,
        seq: seq + 1,
        prev,
        count,
        from: h.clock.now() - 1,
        to: h.clock.now(),
        iat: h.clock.now(),
      });
      const r = await h.call("POST", "/v1/usage", token, { reports: [report] });
      const status = r.body.results?.[0]?.status as string;
      if (status === "accepted") {
        seq++;
        prev = await usageReportHash(report);
      }
      return status;
    },
  };
}

/** reserved of each of an entitlement's quota counters, by period start. */
export async function reservedByPeriod(t: Tenancy, ent: string): Promise<Record<number, number>> {
  const rows = await t.h.server.ctx.db.kysely
    .selectFrom("quota_counters")
    .select(["period_start", "reserved"])
    .where("entitlement_id", "=", ent)
    .execute();
  return Object.fromEntries(rows.map((r) => [Number(r.period_start), Number(r.reserved)]));
}

/** When a license was settled (its charge became what was reported), or null while open. */
export async function releasedAt(t: Tenancy, jti: string): Promise<number | null> {
  const row = await t.h.server.ctx.db.kysely
    .selectFrom("licenses")
    .select("released_at")
    .where("jti", "=", jti)
    .executeTakeFirstOrThrow();
  return row.released_at === null ? null : Number(row.released_at);
}

/** Moves the clock forward to `before` seconds ahead of the next multiple of `period` (quota periods are epoch-aligned). */
export function toPeriodEnd(h: Harness, period: number, before: number): number {
  let end = Math.ceil(h.clock.now() / period) * period;
  if (end - h.clock.now() < before) end += period;
  h.clock.advance(end - before - h.clock.now());
  return end;
}
