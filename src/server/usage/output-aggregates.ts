import { decodeJwt } from "jose";
import type { Kysely } from "kysely";
import {
  binsOf,
  MAX_MONITORED_OUTPUTS,
  MAX_TOTAL_BINS,
  type MonitoringPolicy,
  monitoringSchema,
  type OutputAggregates,
  sum,
} from "../../core/monitoring.js";
import type { Database } from "../db/schema.js";

/** Where a report's aggregates go, and what the drift check then looks at. */
export interface MonitoredTarget {
  modelId: string;
  version: number;
  deviceId: string;
  entitlementId: string;
}

const isCount = (v: unknown) => typeof v === "number" && Number.isSafeInteger(v) && v >= 0 && v <= 1e9;

/** The shape a report's `agg` claim may have (before it is compared with the model's policy). */
export function aggregatesWellFormed(agg: unknown): agg is OutputAggregates {
  return (
    Array.isArray(agg) &&
    agg.length <= MAX_MONITORED_OUTPUTS &&
    agg.every((a) => Array.isArray(a) && a.length <= MAX_TOTAL_BINS && a.every(isCount))
  );
}

/**
 * The monitoring policy a registered version signed, read from its stored manifest (verified at
 * registration), memoised for one batch. Undefined when it declares none or is no longer registered.
 */
export class PolicyCache {
  private readonly policies = new Map<string, Promise<MonitoringPolicy | undefined>>();

  constructor(private readonly tx: Kysely<Database>) {}

  get(modelId: string, version: number): Promise<MonitoringPolicy | undefined> {
    const key = `${modelId}@${version}`;
    let p = this.policies.get(key);
    if (!p) {
      p = this.tx
        .selectFrom("models")
        .select("manifest_jws")
        .where("id", "=", modelId)
        .where("version", "=", version)
        .executeTakeFirst()
        .then((row) => {
          if (!row) return undefined;
          const parsed = monitoringSchema.safeParse(decodeJwt(row.manifest_jws).monitoring);
          return parsed.success ? parsed.data : undefined;
        });
      this.policies.set(key, p);
    }
    return p;
  }
}

/**
 * Whether aggregates fit the policy: one slot per monitored output, each empty or with exactly
 * its bins and at least `minCount` rows (the floor the runtime keeps before reporting).
 */
export function aggregatesFit(agg: OutputAggregates, policy: MonitoringPolicy): boolean {
  return (
    agg.length === policy.outputs.length &&
    agg.every((counts, i) => {
      const spec = policy.outputs[i];
      return (
        counts.length === 0 ||
        (spec !== undefined && counts.length === binsOf(spec) && sum(counts) >= policy.minCount)
      );
    })
  );
}

/** Stores a report's aggregates: one row per reported output, counts only. */
export async function storeAggregates(
  tx: Kysely<Database>,
  target: MonitoredTarget,
  seq: number,
  agg: OutputAggregates,
  now: number,
): Promise<void> {
  const rows = agg.flatMap((counts, output) =>
    counts.length === 0
      ? []
      : [
          {
            device_id: target.deviceId,
            seq,
            output,
            model_id: target.modelId,
            model_version: target.version,
            entitlement_id: target.entitlementId,
            counts: JSON.stringify(counts),
            total: sum(counts),
            received_at: now,
          },
        ],
  );
  if (rows.length > 0) await tx.insertInto("output_aggregates").values(rows).execute();
}
