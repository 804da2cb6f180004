import { utf8 } from "../../core/bytes.js";
import { sha256Hex } from "../../core/digest.js";
import { ModelVaultError } from "../../core/errors.js";
import { innocentScores, pirateBits, readable, tailFraction } from "../../core/tracing/tardos.js";
import { appendAudit } from "../audit/audit-log.js";
import type { Principal, ServerContext } from "../context.js";
import { withTransaction } from "../db/open-database.js";
import { codewordBits, findModelTrace, type ModelTrace } from "./codewords.js";
import { cryptoRandom } from "./crypto-random.js";
import { rankHolders } from "./rank-holders.js";

/** What a tracer sends: one read per slot (tracing/marks.ts), and the accusation parameters. */
export interface TraceRequest {
  reads: number[];
  /** The probability, over the whole trace, of accusing any innocent holder. */
  epsilon: number;
  /** Reads with |r| below this are erased (neither variant). */
  erase: number;
  /** The leaked file's SHA-256, recorded in the audit entry beside the reads' own digest. */
  leakSha256?: string | undefined;
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
}

/**
 * Traces a leaked copy of a model version: turns the reads into pirate bits, scores every
 * device's codeword (symmetric Tardos score), accuses those an innocent would score as high
 * with probability at most ε / holders (a rigorous Chernoff bound, not the Gaussian
 * approximation), and reports them with their licenses and an empirical tail from
 * EMPIRICAL_SAMPLES fresh innocent codewords. Nothing is said of holders not accused: scores of
 * the unaccused would let a caller probe codewords slot by slot (and list a model's licensees)
 * with crafted reads; a crafted copy that matches no codeword is an innocent copy, accused with
 * probability at most ε per trace. Audited as trace.run whatever the verdict, with ε, the
 * erasure threshold and the digests of the reads and the leaked file.
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
  const accused = ranked.filter((r) => r.accused);
  const sample = accused.length
    ? innocentScores(pirate, trace.biases, EMPIRICAL_SAMPLES, cryptoRandom())
    : new Float64Array(0);
  const entry = (r: (typeof ranked)[number]) => ({
    device: r.holder.device,
    principal: r.holder.principal,
    score: r.score,
    bound: r.bound,
    empirical: tailFraction(sample, r.score),
  });
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
  };
  const readsSha256 = await sha256Hex(utf8(JSON.stringify(req.reads)));
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
          epsilon: req.epsilon,
          erase: req.erase,
          readsSha256,
          ...(req.leakSha256 ? { leakSha256: req.leakSha256 } : {}),
        },
      },
      ctx.now(),
    ),
  );
  return report;
}

/**
 * Who may trace which version: auditors any, a publisher only the versions it registered (not
 * those of an id it was assigned later). Ownership is checked before existence, so another
 * publisher learns nothing about a model's versions (refused and audited as denied); then
 * unknown versions are 404 and registered but unmarked ones 409. A version retired while
 * traceable can still be traced.
 */
async function traceableFor(
  ctx: ServerContext,
  actor: Principal,
  model: { id: string; version: number },
): Promise<ModelTrace> {
  const db = ctx.db.kysely;
  const trace = await findModelTrace(db, model);
  const row = await db
    .selectFrom("models")
    .select("registered_by")
    .where("id", "=", model.id)
    .where("version", "=", model.version)
    .executeTakeFirst();
  if (!actor.roles.includes("auditor") && (trace?.registeredBy ?? row?.registered_by) !== actor.id) {
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
    throw new ModelVaultError(
      "ERR_MODEL_NOT_OWNED",
      `you did not register ${model.id} version ${model.version}`,
      {
        modelId: model.id,
      },
    );
  }
  if (!trace && !row)
    throw new ModelVaultError("ERR_MODEL_NOT_FOUND", `no model ${model.id} version ${model.version}`);
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
