import { ModelVaultError } from "../../core/errors.js";
import { innocentScores, pirateBits, readable, tailFraction } from "../../core/tracing/tardos.js";
import { appendAudit } from "../audit/audit-log.js";
import type { Principal, ServerContext } from "../context.js";
import { withTransaction } from "../db/open-database.js";
import { codewordBits, findModelTrace, type ModelTrace } from "./codewords.js";
import { cryptoRandom } from "./crypto-random.js";
import { RANKED, rankHolders } from "./rank-holders.js";

/** What a tracer sends: one read per slot (tracing/marks.ts), and the accusation parameters. */
export interface TraceRequest {
  reads: number[];
  /** The probability, over the whole trace, of accusing any innocent holder. */
  epsilon: number;
  /** Reads with |r| below this are erased (neither variant). */
  erase: number;
}

/** Innocent codewords sampled for the empirical tail reported next to each bound. */
export const EMPIRICAL_SAMPLES = 20_000;
const MAX_READ = 1e6;

interface Holder {
  device: string;
  principal: string;
  entitlement: string;
  codeword: Uint8Array;
}

export interface TraceReport {
  model: { id: string; version: number };
  slots: number;
  readable: number;
  erased: number;
  holders: number;
  epsilon: number;
  verdict: "accused" | "no-accusation";
  accused: {
    device: string;
    principal: string;
    entitlement: string;
    licenses: string[];
    score: number;
    bound: number;
    empirical: number;
  }[];
  ranking: { device: string; principal: string; score: number; bound: number; empirical: number }[];
}

/**
 * Traces a leaked copy of a model version: turns the reads into pirate bits, scores every
 * device's codeword (symmetric Tardos score), accuses those an innocent would score as high
 * with probability at most ε / holders (a rigorous Chernoff bound, not the Gaussian
 * approximation), and reports them with their licenses, the top scores, and an empirical tail
 * from EMPIRICAL_SAMPLES fresh innocent codewords. Audited as trace.run whatever the verdict.
 */
export async function runTrace(
  ctx: ServerContext,
  actor: Principal,
  model: { id: string; version: number },
  req: TraceRequest,
): Promise<TraceReport> {
  const trace = await traceableFor(ctx, actor, model);
  checkReads(req.reads, trace.slots);
  const pirate = pirateBits(req.reads, req.erase);
  const holders = await holdersOf(ctx, model);
  const ranked = rankHolders(holders, pirate, trace.biases, req.epsilon / Math.max(1, holders.length));
  const sample = ranked.length
    ? innocentScores(pirate, trace.biases, EMPIRICAL_SAMPLES, cryptoRandom())
    : new Float64Array(0);
  const entry = (r: (typeof ranked)[number]) => ({
    device: r.holder.device,
    principal: r.holder.principal,
    score: r.score,
    bound: r.bound,
    empirical: tailFraction(sample, r.score),
  });
  const accused = ranked.filter((r) => r.accused);
  const licenses = await licensesOf(
    ctx,
    model,
    accused.map((r) => r.holder.device),
  );
  const report: TraceReport = {
    model,
    slots: trace.slots,
    readable: readable(pirate),
    erased: trace.slots - readable(pirate),
    holders: holders.length,
    epsilon: req.epsilon,
    verdict: accused.length ? "accused" : "no-accusation",
    accused: accused.map((r) => ({
      ...entry(r),
      entitlement: r.holder.entitlement,
      licenses: licenses.get(r.holder.device) ?? [],
    })),
    ranking: ranked.slice(0, RANKED).map(entry),
  };
  await withTransaction(ctx.db, (tx) =>
    appendAudit(
      tx,
      {
        actor: actor.id,
        action: "trace.run",
        outcome: "success",
        subject: `${model.id}@${model.version}`,
        detail: {
          readable: report.readable,
          erased: report.erased,
          verdict: report.verdict,
          accused: report.accused.map((a) => a.device),
        },
      },
      ctx.now(),
    ),
  );
  return report;
}

/**
 * Who may trace which version: auditors any, a publisher only the model ids it owns (another
 * publisher's attempt is refused and audited). Unknown versions are 404 and registered but
 * unmarked ones 409; a version retired while traceable can still be traced.
 */
async function traceableFor(
  ctx: ServerContext,
  actor: Principal,
  model: { id: string; version: number },
): Promise<ModelTrace> {
  const db = ctx.db.kysely;
  const trace = await findModelTrace(db, model);
  const registered =
    trace ??
    (await db
      .selectFrom("models")
      .select("id")
      .where("id", "=", model.id)
      .where("version", "=", model.version)
      .executeTakeFirst());
  if (!registered)
    throw new ModelVaultError("ERR_MODEL_NOT_FOUND", `no model ${model.id} version ${model.version}`);
  if (!actor.roles.includes("auditor")) {
    const owner = await db
      .selectFrom("model_owners")
      .select("principal_id")
      .where("model_id", "=", model.id)
      .executeTakeFirst();
    if (owner?.principal_id !== actor.id) {
      await withTransaction(ctx.db, (tx) =>
        appendAudit(
          tx,
          {
            actor: actor.id,
            action: "trace.run",
            outcome: "denied",
            subject: `${model.id}@${model.version}`,
            detail: { reason: "ERR_MODEL_NOT_OWNED" },
          },
          ctx.now(),
        ),
      );
      throw new ModelVaultError("ERR_MODEL_NOT_OWNED", `model id ${model.id} belongs to another publisher`, {
        modelId: model.id,
      });
    }
  }
  if (!trace) throw new ModelVaultError("ERR_MODEL_NOT_TRACEABLE");
  return trace;
}

function checkReads(reads: readonly number[], slots: number): void {
  if (reads.length !== slots)
    throw new ModelVaultError("ERR_TRACE_READS_INVALID", `reads: ${reads.length} values for ${slots} slots`, {
      path: "reads",
      slots,
    });
  const bad = reads.findIndex((r) => !Number.isFinite(r) || Math.abs(r) > MAX_READ);
  if (bad >= 0)
    throw new ModelVaultError(
      "ERR_TRACE_READS_INVALID",
      `reads.${bad}: not a finite number within ±${MAX_READ}`,
      {
        path: `reads.${bad}`,
      },
    );
}

async function holdersOf(ctx: ServerContext, model: { id: string; version: number }): Promise<Holder[]> {
  const rows = await ctx.db.kysely
    .selectFrom("trace_codewords")
    .select(["device_id", "principal_id", "entitlement_id", "codeword"])
    .where("model_id", "=", model.id)
    .where("version", "=", model.version)
    .orderBy("device_id")
    .execute();
  return rows.map((r) => ({
    device: r.device_id,
    principal: r.principal_id,
    entitlement: r.entitlement_id,
    codeword: codewordBits(r.codeword),
  }));
}

/** Every license each device got for this model version, oldest first. */
async function licensesOf(
  ctx: ServerContext,
  model: { id: string; version: number },
  devices: string[],
): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  if (!devices.length) return out;
  const rows = await ctx.db.kysely
    .selectFrom("licenses")
    .select(["device_id", "jti"])
    .where("model_id", "=", model.id)
    .where("model_version", "=", model.version)
    .where("device_id", "in", devices)
    .orderBy("issued_at")
    .orderBy("jti")
    .execute();
  for (const r of rows) out.set(r.device_id, [...(out.get(r.device_id) ?? []), r.jti]);
  return out;
}
