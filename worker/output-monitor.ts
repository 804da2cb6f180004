/**
 * The device side of output monitoring (docs/FORMAT.md, "Monitoring policy"): counts of each
 * monitored output, pending until a usage report takes them. Counts leave the device only in a
 * signed report and only once an output has `minCount` rows: never a single inference's output.
 */
import {
  binsOf,
  countOutputs,
  type MonitoringPolicy,
  type OutputAggregates,
  sum,
} from "../src/core/monitoring.js";
import type { PlainTensor } from "../src/core/worker-protocol.js";

/** Counts not yet reported, persisted with the usage state. */
export interface PendingAggregates {
  /** The policy the counts were made under: counts of another policy are dropped, never mixed. */
  policy: string;
  counts: OutputAggregates;
}

function policyKey(policy: MonitoringPolicy): string {
  return JSON.stringify(policy.outputs.map((o) => [o.output, o.kind, binsOf(o)]));
}

/** Adds one run's outputs to what is pending; starts afresh when the policy changed. */
export function observeOutputs(
  pending: PendingAggregates | undefined,
  policy: MonitoringPolicy,
  outputs: Record<string, PlainTensor>,
): PendingAggregates {
  const key = policyKey(policy);
  const next = pending?.policy === key ? pending : { policy: key, counts: [] };
  countOutputs(policy, outputs, next.counts);
  return next;
}

/**
 * The counts a report may carry now: every output with at least `minCount` rows (its slot in
 * the result), the others staying pending (`[]` in the result). Undefined when none is ready.
 */
export function releaseAggregates(
  pending: PendingAggregates | undefined,
  policy: MonitoringPolicy | undefined,
): { agg: OutputAggregates | undefined; rest: PendingAggregates | undefined } {
  if (!pending || !policy || pending.policy !== policyKey(policy)) return { agg: undefined, rest: pending };
  const agg: OutputAggregates = policy.outputs.map(() => []);
  const rest: PendingAggregates = { policy: pending.policy, counts: [] };
  let ready = false;
  for (const [i, counts] of pending.counts.entries()) {
    if (!counts) continue;
    if (sum(counts) >= policy.minCount) {
      agg[i] = counts;
      ready = true;
    } else rest.counts[i] = counts;
  }
  return ready ? { agg, rest } : { agg: undefined, rest: pending };
}
