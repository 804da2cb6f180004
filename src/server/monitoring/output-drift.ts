/**
 * Output monitoring on the server: after a device's aggregates arrive, its model version's
 * distributions over the recent window are compared (docs/THREAT-MODEL.md, "Output monitoring"):
 *
 * - the device against everyone else (or, with too few others, the declared baseline): one device far
 *   from the rest is probing, extracting or misusing the model → `output_outlier`;
 * - its entitlement and the whole model version against the baseline, declared in the manifest
 *   or learned from the version's first `learnSeconds` of aggregates → `output_drift`.
 *
 * A distribution "has moved" when the population stability index reaches `psi` and a
 * chi-square test says it is not chance (p < `pValue`), with enough rows on both sides. One open
 * (unacknowledged) anomaly per kind and subject within the window: no flood while it persists.
 */
import type { Kysely } from "kysely";
import { binsOf, type MonitoredOutput, sum } from "../../core/monitoring.js";
import type { ServerContext } from "../context.js";
import type { Database } from "../db/schema.js";
import { type MonitoredTarget, PolicyCache } from "../usage/output-aggregates.js";
import { recordAnomaly } from "./anomalies.js";
import { compareDistributions } from "./drift.js";

/** Rows read per check: the newest ones in the window (bounds the work of one check). */
const MAX_ROWS = 20_000;

interface Row {
  device_id: string;
  entitlement_id: string;
  counts: string;
  received_at: number;
}

const add = (into: number[], counts: readonly number[]) => {
  for (const [i, c] of counts.entries()) into[i] = (into[i] ?? 0) + c;
};

async function rows(tx: Kysely<Database>, t: MonitoredTarget, output: number, from: number, to?: number) {
  let q = tx
    .selectFrom("output_aggregates")
    .select(["device_id", "entitlement_id", "counts", "received_at"])
    .where("model_id", "=", t.modelId)
    .where("model_version", "=", t.version)
    .where("output", "=", output)
    .where("received_at", ">=", from);
  if (to !== undefined) q = q.where("received_at", "<", to);
  return (await q.orderBy("received_at", "desc").limit(MAX_ROWS).execute()) as Row[];
}

/** The declared baseline, else the learned one (once the learning period is over), and when it ends. */
async function baseline(
  tx: Kysely<Database>,
  ctx: ServerContext,
  t: MonitoredTarget,
  output: number,
  spec: MonitoredOutput,
): Promise<{ counts: number[]; learnedUntil: number } | undefined> {
  if (spec.baseline) return { counts: spec.baseline, learnedUntil: 0 };
  const first = await tx
    .selectFrom("output_aggregates")
    .select((eb) => eb.fn.min("received_at").as("at"))
    .where("model_id", "=", t.modelId)
    .where("model_version", "=", t.version)
    .where("output", "=", output)
    .executeTakeFirst();
  const start = first?.at == null ? undefined : Number(first.at);
  const until = start === undefined ? undefined : start + ctx.options.monitoring.learnSeconds;
  if (until === undefined || ctx.now() < until) return undefined;
  const counts = new Array(binsOf(spec)).fill(0);
  for (const r of await rows(tx, t, output, start as number, until)) add(counts, JSON.parse(r.counts));
  return { counts, learnedUntil: until };
}

/** Compares the target's distributions for every monitored output; records what moved. */
export async function checkOutputDrift(ctx: ServerContext, t: MonitoredTarget): Promise<void> {
  const o = ctx.options.monitoring;
  await ctx.db.transaction(async (tx) => {
    const policy = await new PolicyCache(tx).get(t.modelId, t.version);
    if (!policy) return;
    const now = ctx.now();
    const since = now - o.windowSeconds;
    for (const [output, spec] of policy.outputs.entries()) {
      const bins = binsOf(spec);
      const base = await baseline(tx, ctx, t, output, spec);
      const device = new Array(bins).fill(0);
      const others = new Array(bins).fill(0);
      const entitlement = new Array(bins).fill(0);
      const model = new Array(bins).fill(0);
      for (const r of await rows(tx, t, output, since)) {
        const counts = JSON.parse(r.counts) as number[];
        add(r.device_id === t.deviceId ? device : others, counts);
        // Against a learned baseline, only what came after the learning period counts as drift.
        if (base && r.received_at < base.learnedUntil) continue;
        add(model, counts);
        if (r.entitlement_id === t.entitlementId) add(entitlement, counts);
      }
      const label = { model: t.modelId, version: t.version, output: spec.output };
      // A device is judged against the others; with too few of them, against a declared
      // baseline only (a learned one may be what the whole population has since left).
      const reference =
        sum(others) >= o.minReferenceCount
          ? { counts: others, against: "other devices" }
          : spec.baseline && { counts: spec.baseline, against: "declared baseline" };
      if (reference && sum(device) >= o.minDeviceCount)
        await judge(tx, ctx, "output_outlier", { device: t.deviceId }, device, reference, label);
      if (!base) continue;
      const baseRef = {
        counts: base.counts,
        against: base.learnedUntil ? "learned baseline" : "declared baseline",
      };
      if (sum(entitlement) >= o.minReferenceCount)
        await judge(tx, ctx, "output_drift", { entitlement: t.entitlementId }, entitlement, baseRef, label);
      if (sum(model) >= o.minReferenceCount)
        await judge(tx, ctx, "output_drift", { model: `${t.modelId}@${t.version}` }, model, baseRef, label);
    }
  });
}

type Scope = { device: string } | { entitlement: string } | { model: string };

async function judge(
  tx: Kysely<Database>,
  ctx: ServerContext,
  kind: "output_outlier" | "output_drift",
  scope: Scope,
  observed: number[],
  reference: { counts: number[]; against: string },
  label: { model: string; version: number; output: string },
): Promise<void> {
  const o = ctx.options.monitoring;
  const r = compareDistributions(observed, reference.counts);
  if (r.psi < o.psi || r.p >= o.pValue) return;
  const subject = "device" in scope ? scope.device : "entitlement" in scope ? scope.entitlement : scope.model;
  const open = await tx
    .selectFrom("anomalies")
    .select("id")
    .where("kind", "=", kind)
    .where("subject", "=", subject)
    .where("acknowledged_at", "is", null)
    .where("created_at", ">=", ctx.now() - o.windowSeconds)
    .executeTakeFirst();
  if (open) return;
  const owner =
    "device" in scope
      ? await tx
          .selectFrom("devices")
          .select("principal_id")
          .where("id", "=", scope.device)
          .executeTakeFirst()
      : "entitlement" in scope
        ? await tx
            .selectFrom("entitlements")
            .select("principal_id")
            .where("id", "=", scope.entitlement)
            .executeTakeFirst()
        : undefined;
  const share = (counts: number[]) => {
    const n = sum(counts) || 1;
    return counts.map((c) => Math.round((c / n) * 1000) / 1000);
  };
  await recordAnomaly(
    tx,
    {
      kind,
      severity: kind === "output_outlier" ? "alert" : "warning",
      principalId: owner?.principal_id ?? null,
      deviceId: "device" in scope ? scope.device : null,
      subject,
      detail: {
        scope: Object.keys(scope)[0],
        ...label,
        against: reference.against,
        psi: Math.round(r.psi * 1000) / 1000,
        chi2: Math.round(r.chi2 * 10) / 10,
        p: r.p,
        n: r.n,
        observed,
        observedShare: share(observed),
        referenceShare: share(reference.counts),
      },
    },
    ctx.now(),
    ctx.metrics,
  );
}
