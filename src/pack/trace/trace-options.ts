import { stat } from "node:fs/promises";
import { dirname, resolve, sep } from "node:path";
import { ModelVaultError } from "../../core/errors.js";
import { MAX_TRACE_SLOTS } from "../../core/tracing/trace-manifest.js";

/** One sample feed for the quality guard: input name → its dims and row-major values. */
export type TraceFeed = Record<string, { dims: readonly number[]; data: ArrayLike<number> }>;

/** The tracing options of `packModel` (docs/TRACING.md, "Packing"). */
export interface TraceOptions {
  /** Make a traceable package with this many marked slots (1..512). */
  traceSlots?: number;
  /** Required with traceSlots: the publisher's copy of the trace secret (JSON, mode 0600). */
  traceKeyOut?: string;
  /** δ per weight as a fraction of the tensor's standard deviation (default 0.01). */
  traceStrength?: number;
  /** Fraction of the eligible weights the slots cover together (default 0.5). */
  traceCoverage?: number;
  /** Largest absolute output difference allowed on the sample inputs (default 0.25). */
  traceTolerance?: number;
  /** Sample feeds for the quality guard instead of random inputs drawn from the signature. */
  traceInputs?: readonly TraceFeed[];
}

/**
 * Defaults, resolved here once. Measured on the digits model (784→128→10 MLP, 101,632 eligible
 * weights; test/pack/trace-pack.test.ts prints the numbers), 20 packs per setting, codewords
 * all-0, all-1 and random, held-out accuracy in net flips out of 1500 (0.2 points = 3 flips):
 *
 * - strength 0.01σ: 0.015 never exceeded 2 flips over those 120 codewords but reached the 3-flip
 *   limit in an end-to-end run (test/tracing/trace-leak.test.ts), 0.02 reached it, 0.03 and above
 *   crossed it; 0.01 keeps a margin. The tracer reads a slot of L weights with a
 *   signal-to-noise ratio δ·√L/σ_noise: against the Gaussian noise that costs digits 1 point
 *   (σ_noise ≈ 0.17σ), ≈ 0.9 per slot at N = 512 and ≈ 1.2 at N = 256, ≈ 20 over all slots
 *   together; larger models have longer slots and read more strongly at the same strength.
 * - coverage 0.5: half of every eligible tensor is absent from the common shards; digits with its
 *   slots zeroed keeps 52-64% accuracy instead of 97%. It doubles those bytes in storage.
 * - tolerance 0.25: calibrated on probability outputs. On 32 random inputs the default strength
 *   (0.01) moves digits' probabilities by at most 0.02-0.04 (mean 0.001-0.003); strength 0.1 by 0.26-0.35,
 *   0.2 (which costs 0.5-1 accuracy points) by 0.7-0.8. Models whose outputs live on another
 *   scale (logits, regressions) should declare their own.
 */
export const TRACE_DEFAULTS = {
  strength: 0.01,
  coverage: 0.5,
  tolerance: 0.25,
  /** Random sample feeds the guard draws when none are given. */
  samples: 32,
  /** Above this many bytes of model files the guard is skipped (it holds the model in memory twice). */
  guardMaxBytes: 2 ** 30,
  /** A slot shorter than this reads too weakly to be worth a wrapped key. */
  minSlotElements: 32,
} as const;

export interface TraceSettings {
  slots: number;
  keyOut: string;
  strength: number;
  coverage: number;
  tolerance: number;
  inputs: readonly TraceFeed[] | undefined;
}

function invalid(path: string, why: string): ModelVaultError {
  return new ModelVaultError("ERR_PACK_TRACE_INVALID", `${path}: ${why}`, { path });
}

function fraction(value: number | undefined, fallback: number, path: string, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0 || value > max)
    throw invalid(
      path,
      max === Number.MAX_VALUE ? "must be a positive finite number" : `must be a number in (0, ${max}]`,
    );
  return value;
}

function checkFeedShape(feeds: unknown): readonly TraceFeed[] {
  if (!Array.isArray(feeds) || feeds.length === 0 || feeds.length > 1000)
    throw invalid("traceInputs", "must be a list of 1 to 1000 feeds");
  for (const [i, feed] of feeds.entries()) {
    if (!feed || typeof feed !== "object" || Array.isArray(feed))
      throw invalid(`traceInputs.${i}`, "must map input names to { dims, data }");
    for (const [name, t] of Object.entries(feed as Record<string, unknown>)) {
      const { dims, data } = (t ?? {}) as { dims?: unknown; data?: { length?: unknown } };
      if (!Array.isArray(dims) || !dims.every((d) => Number.isSafeInteger(d) && d >= 0))
        throw invalid(`traceInputs.${i}.${name}.dims`, "must be a list of non-negative integers");
      if (!data || typeof data.length !== "number" || data.length !== dims.reduce((n, d) => n * d, 1))
        throw invalid(`traceInputs.${i}.${name}.data`, "must hold as many values as its dims say");
    }
  }
  return feeds as TraceFeed[];
}

/**
 * Checks the tracing options before any file is touched; undefined when the package is not
 * traceable. The trace key file must not exist (unless `force`), must sit in an existing folder
 * and not inside the output directory (a later --force pack would delete it).
 */
export async function checkTraceOptions(
  o: TraceOptions & { outDir: string; insecureKeyOut?: string; force?: boolean },
): Promise<TraceSettings | undefined> {
  if (o.traceSlots === undefined) {
    const stray = (
      ["traceKeyOut", "traceStrength", "traceCoverage", "traceTolerance", "traceInputs"] as const
    ).find((k) => o[k] !== undefined);
    if (stray) throw invalid(stray, "needs traceSlots");
    return undefined;
  }
  if (!Number.isInteger(o.traceSlots) || o.traceSlots < 1 || o.traceSlots > MAX_TRACE_SLOTS)
    throw invalid("traceSlots", `must be an integer in [1, ${MAX_TRACE_SLOTS}]`);
  if (typeof o.traceKeyOut !== "string" || o.traceKeyOut === "")
    throw invalid("traceKeyOut", "is required with traceSlots (the publisher's copy of the trace secret)");
  const keyOut = resolve(o.traceKeyOut);
  const out = resolve(o.outDir);
  if (keyOut === out || keyOut.startsWith(out + sep))
    throw invalid("traceKeyOut", "must not be inside the output directory");
  if (o.insecureKeyOut !== undefined && resolve(o.insecureKeyOut) === keyOut)
    throw invalid("traceKeyOut", "must not be the insecure content key file");
  const folder = await stat(dirname(keyOut)).catch(() => undefined);
  if (!folder?.isDirectory()) throw invalid("traceKeyOut", `folder ${dirname(keyOut)} does not exist`);
  if (!o.force && (await stat(keyOut).catch(() => undefined)))
    throw invalid("traceKeyOut", `${o.traceKeyOut} exists (use --force to overwrite)`);
  return {
    slots: o.traceSlots,
    keyOut,
    strength: fraction(o.traceStrength, TRACE_DEFAULTS.strength, "traceStrength", 1),
    coverage: fraction(o.traceCoverage, TRACE_DEFAULTS.coverage, "traceCoverage", 1),
    tolerance: fraction(o.traceTolerance, TRACE_DEFAULTS.tolerance, "traceTolerance", Number.MAX_VALUE),
    inputs: o.traceInputs === undefined ? undefined : checkFeedShape(o.traceInputs),
  };
}
