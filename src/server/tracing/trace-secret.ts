import type { Kysely } from "kysely";
import { openContentKey, TRACE_KEY_CTY } from "../../core/content-key-jwe.js";
import { isModelVaultError, ModelVaultError } from "../../core/errors.js";
import type { Manifest } from "../../core/manifest.js";
import { drawBiases } from "../../core/tracing/tardos.js";
import type { ServerContext } from "../context.js";
import type { Database } from "../db/schema.js";
import { kekContext } from "../policy/kek-context.js";
import { cryptoRandom } from "./crypto-random.js";

/**
 * The collusion size the code is built for: the bias cut-off t = 1/(300c) (Tardos 2003) is set
 * at registration, when the biases are drawn, so c is a constant of the server. c = 3 because
 * the symmetric code needs m ≈ (π²/2)·c²·ln(holders/ε) positions (Škorić et al. 2008): for
 * c = 3, 1,000 holders and ε = 10⁻³ that is about 610, at the top of what a license carries
 * (MAX_TRACE_SLOTS = 512); c = 2 would need a quarter of that and resist one fewer colluder.
 * Larger gangs are still often caught (the accusation bound never depends on c), only not
 * guaranteed. The false-accusation probability ε is chosen per trace (run-trace.ts).
 */
export const TRACE_COLLUDERS = 3;

/** The KMS context of a model's trace secret: the content key's plus "|trace", so neither ciphertext opens as the other. */
export function traceKekContext(model: { id: string; version: number; content_key_id: string }): string {
  return `${kekContext(model)}|trace`;
}

export type ModelTraceRow = Omit<Database["model_traces"], "created_at" | "registered_by">;

/**
 * Registration of a traceable package, before its transaction: a manifest with a `trace`
 * section needs its trace-key.jwe (sealed to this server's registration key, bound to the
 * manifest's model id, version and content key id, with the trace key's own content type), and
 * an untraceable manifest takes none. The secret must not be the content key (a licensee who
 * extracts the content key could then derive both variants of every slot and forge any
 * codeword). It is re-sealed under the KEK and the code's biases are drawn.
 */
export async function prepareModelTrace(
  ctx: ServerContext,
  manifest: Manifest,
  traceKey: string | undefined,
  contentKey: Uint8Array,
): Promise<ModelTraceRow | undefined> {
  if (!manifest.trace) {
    if (traceKey !== undefined)
      throw new ModelVaultError(
        "ERR_TRACE_KEY_INVALID",
        "this manifest has no trace section: it takes no trace key",
      );
    return undefined;
  }
  if (traceKey === undefined)
    throw new ModelVaultError("ERR_TRACE_KEY_INVALID", "a traceable manifest needs its trace-key.jwe");
  const model = {
    id: manifest.model.id,
    version: manifest.model.version,
    content_key_id: manifest.contentKeyId,
  };
  const secret = await openTraceKey(ctx, traceKey, model);
  try {
    if (sameBytes(secret, contentKey))
      throw new ModelVaultError("ERR_TRACE_KEY_INVALID", "the trace secret must not be the content key");
    const slots = manifest.trace.slots.length;
    return {
      model_id: model.id,
      version: model.version,
      slots,
      colluders: TRACE_COLLUDERS,
      biases: JSON.stringify(drawBiases(slots, TRACE_COLLUDERS, cryptoRandom())),
      wrapped_secret: await ctx.keys.kek.encrypt(secret, traceKekContext(model)),
      kek_id: ctx.keys.kek.id,
    };
  } finally {
    secret.fill(0);
  }
}

async function openTraceKey(
  ctx: ServerContext,
  traceKey: string,
  model: { id: string; version: number; content_key_id: string },
): Promise<Uint8Array> {
  try {
    const envelope = await openContentKey(
      traceKey,
      ctx.keys.registration.privateJwk,
      { modelId: model.id, modelVersion: model.version, contentKeyId: model.content_key_id },
      TRACE_KEY_CTY,
    );
    return envelope.key;
  } catch (cause) {
    if (isModelVaultError(cause, "ERR_CONTENT_KEY_INVALID"))
      throw new ModelVaultError(
        "ERR_TRACE_KEY_INVALID",
        "the trace key does not open under this server's registration key, is not a trace key, or belongs to another package",
        {},
        { cause },
      );
    throw cause;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

/**
 * Inside every registration's transaction, after the models row. A version retired while
 * traceable keeps its trace records (its leaks must stay traceable), so the version cannot be
 * registered again, traceable or not: its old codewords and trace secret would then meet a
 * package they do not belong to. The owner registers a new version instead.
 */
export async function insertModelTrace(
  tx: Kysely<Database>,
  model: { id: string; version: number },
  row: ModelTraceRow | undefined,
  registeredBy: string,
  now: number,
): Promise<void> {
  const kept = await tx
    .selectFrom("model_traces")
    .select("model_id")
    .where("model_id", "=", model.id)
    .where("version", "=", model.version)
    .executeTakeFirst();
  if (kept)
    throw new ModelVaultError(
      "ERR_CONFLICT",
      `model ${model.id} version ${model.version} was traceable before it was retired; its trace records are kept, so register a new version`,
    );
  if (!row) return;
  await tx
    .insertInto("model_traces")
    .values({ ...row, registered_by: registeredBy, created_at: now })
    .execute();
}
