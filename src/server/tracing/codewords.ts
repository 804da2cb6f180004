import type { Kysely } from "kysely";
import { drawCodeword } from "../../core/tracing/tardos.js";
import { appendAudit } from "../audit/audit-log.js";
import type { Database } from "../db/schema.js";
import { cryptoRandom } from "./crypto-random.js";

/**
 * Codewords: one per device per model version, assigned at the device's first license and the
 * same in every license after (renewals, other entitlements of the same principal).
 *
 * Why per device, not per license: a licensee who got a fresh codeword with every license could
 * collect as many as it likes by renewing and then collude with itself, mixing its own copies
 * slot by slot until no codeword scores high (the code resists c colluders, not any number).
 * Per device, the codewords one licensee can hold are bounded by its entitlement's max_devices,
 * and each of them names a device, which is what an accusation should name.
 */

/** A traceable model version, as issuance and tracing read it. */
export interface ModelTrace {
  modelId: string;
  version: number;
  slots: number;
  biases: number[];
  wrappedSecret: string;
  /** The publisher that registered the version (the one that may trace it). */
  registeredBy: string;
}

/** The trace record of a model version, or undefined when it is not traceable. */
export async function findModelTrace(
  db: Kysely<Database>,
  model: { id: string; version: number },
): Promise<ModelTrace | undefined> {
  const row = await db
    .selectFrom("model_traces")
    .select(["slots", "biases", "wrapped_secret", "registered_by"])
    .where("model_id", "=", model.id)
    .where("version", "=", model.version)
    .executeTakeFirst();
  if (!row) return undefined;
  return {
    modelId: model.id,
    version: model.version,
    slots: row.slots,
    biases: JSON.parse(row.biases) as number[],
    wrappedSecret: row.wrapped_secret,
    registeredBy: row.registered_by,
  };
}

export function codewordText(bits: Uint8Array): string {
  return Array.from(bits, (b) => (b ? "1" : "0")).join("");
}

export function codewordBits(text: string): Uint8Array {
  return Uint8Array.from(text, (ch) => (ch === "1" ? 1 : 0));
}

/**
 * Inside the issuing transaction, once the request is admitted: the device's codeword for this
 * model version, drawn and recorded if it has none. Insert-if-absent on the key, then read back
 * (every time: a renewal's draw is simply not stored), so concurrent first licenses of one
 * device all get the one that was stored. Only a new assignment is audited (the device, model
 * and entitlement; never the codeword).
 */
export async function assignCodeword(
  tx: Kysely<Database>,
  trace: ModelTrace,
  holder: { device: string; principal: string; entitlement: string },
  now: number,
): Promise<Uint8Array> {
  const inserted = await tx
    .insertInto("trace_codewords")
    .values({
      model_id: trace.modelId,
      version: trace.version,
      device_id: holder.device,
      principal_id: holder.principal,
      entitlement_id: holder.entitlement,
      codeword: codewordText(drawCodeword(trace.biases, cryptoRandom())),
      assigned_at: now,
    })
    .onConflict((oc) => oc.columns(["model_id", "version", "device_id"]).doNothing())
    .executeTakeFirst();
  if (Number(inserted.numInsertedOrUpdatedRows ?? 0) > 0)
    await appendAudit(
      tx,
      {
        actor: holder.principal,
        action: "trace.assign",
        outcome: "success",
        subject: holder.device,
        detail: { model: `${trace.modelId}@${trace.version}`, entitlement: holder.entitlement },
      },
      now,
    );
  const stored = await tx
    .selectFrom("trace_codewords")
    .select("codeword")
    .where("model_id", "=", trace.modelId)
    .where("version", "=", trace.version)
    .where("device_id", "=", holder.device)
    .executeTakeFirstOrThrow();
  return codewordBits(stored.codeword);
}
