import { stat } from "node:fs/promises";
import type { TensorInfo } from "../../core/manifest.js";
import { planTrace, type TracePlan, type TraceSource } from "./plan-trace.js";
import { guardQuality, type QualityReport } from "./quality-guard.js";
import type { TraceSettings } from "./trace-options.js";

/** What `packModel` reports about a traceable package (PackResult.trace). */
export interface PackTraceSummary {
  slots: number;
  /** Weights per slot, and the eligible float weights the slots were placed in. */
  slotLength: number;
  eligibleWeights: number;
  /** Fraction of the eligible weights the slots cover (≤ the requested coverage: L is rounded down). */
  coverage: number;
  strength: number;
  /** Bytes the sealed variants add to the package (two per slot, 16-byte tag each). */
  storageOverheadBytes: number;
  quality: QualityReport;
}

export type SizedSource = TraceSource & { size: number };

/**
 * Everything a traceable pack decides before the output folder is made: the slots, the secret
 * and the quality guard's verdict (which may refuse with ERR_PACK_TRACE_TOLERANCE).
 */
export async function prepareTrace(
  settings: TraceSettings,
  sources: readonly TraceSource[],
  inputs: readonly TensorInfo[],
): Promise<{ plan: TracePlan; sources: SizedSource[]; quality: QualityReport }> {
  const sized = await Promise.all(sources.map(async (s) => ({ ...s, size: (await stat(s.path)).size })));
  const plan = await planTrace(settings, sized);
  try {
    return { plan, sources: sized, quality: await guardQuality(plan, sized, inputs) };
  } catch (e) {
    plan.dispose();
    throw e;
  }
}

export function traceSummary(
  plan: TracePlan,
  quality: QualityReport,
  storageOverheadBytes: number,
): PackTraceSummary {
  return {
    slots: plan.slots.length,
    slotLength: plan.length,
    eligibleWeights: plan.eligible,
    coverage: (plan.slots.length * plan.length) / plan.eligible,
    strength: plan.settings.strength,
    storageOverheadBytes,
    quality,
  };
}

/** The slots of one file as byte ranges [start, end) relative to the shard at `shardOffset`. */
export function zeroRanges(
  plan: TracePlan | undefined,
  location: string,
  shardOffset: number,
  shardSize: number,
): [number, number][] | undefined {
  if (!plan) return undefined;
  const ranges: [number, number][] = [];
  for (const s of plan.slots) {
    if (s.file !== location) continue;
    const start = Math.max(s.offset, shardOffset);
    const end = Math.min(s.offset + s.size, shardOffset + shardSize);
    if (start < end) ranges.push([start - shardOffset, end - shardOffset]);
  }
  return ranges.length ? ranges : undefined;
}
