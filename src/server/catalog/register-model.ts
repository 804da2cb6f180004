import { openContentKey } from "../../core/content-key-jwe.js";
import { manifestDigest } from "../../core/digest.js";
import { ModelVaultError } from "../../core/errors.js";
import type { EcJwk } from "../../core/jwk.js";
import { verifyManifest } from "../../core/manifest-jws.js";
import { appendAudit } from "../audit/audit-log.js";
import type { ServerContext } from "../context.js";
import { withTransaction } from "../db/open-database.js";
import { kekContext } from "../policy/kek-context.js";
import { insertModelTrace, prepareModelTrace } from "../tracing/trace-secret.js";
import { claimModelId } from "./model-owners.js";
import { refuseRevokedPublisherKey } from "./publisher-keys.js";

export interface Registration {
  /** The package's manifest.jws. */
  manifest: string;
  /** The package's content-key.jwe, sealed to this server's registration key. */
  contentKey: string;
  /** A traceable package's trace-key.jwe (required then, refused otherwise; docs/TRACING.md). */
  traceKey?: string | undefined;
}

/**
 * Registers a packed model version for `actor` (a publisher). Ownership is checked twice:
 * the manifest must be signed by a publisher key that belongs to `actor` (so nobody can
 * register someone else's public manifest with a content key of their choosing), and the model
 * id must be `actor`'s (claimed by its first registration, or assigned by an admin), so nobody
 * can take another publisher's future versions. The content key (and a traceable package's
 * trace secret) is re-sealed under the KEK before anything is written; the rows and their audit
 * entry commit together.
 */
export async function registerModel(
  ctx: ServerContext,
  actor: string,
  body: Registration,
): Promise<{ id: string; version: number; manifestDigest: string; traceSlots?: number }> {
  const keys = await ctx.db.kysely
    .selectFrom("publisher_keys")
    .select(["kid", "jwk", "principal_id"])
    .execute();
  const { manifest, publisherKid } = await verifyManifest(
    body.manifest,
    keys.map((k) => JSON.parse(k.jwk) as EcJwk),
  );
  if (keys.find((k) => k.kid === publisherKid)?.principal_id !== actor) {
    throw new ModelVaultError(
      "ERR_PUBLISHER_KEY_NOT_OWNED",
      "the manifest is signed by a publisher key that is not yours",
      { kid: publisherKid },
    );
  }
  await refuseRevokedPublisherKey(ctx.db.kysely, publisherKid);
  if (manifest.expires !== undefined && manifest.expires <= ctx.now())
    throw new ModelVaultError("ERR_MANIFEST_EXPIRED", "the manifest's signed validity has passed", {
      expires: manifest.expires,
    });
  const envelope = await openContentKey(body.contentKey, ctx.keys.registration.privateJwk, {
    modelId: manifest.model.id,
    modelVersion: manifest.model.version,
    contentKeyId: manifest.contentKeyId,
  });
  const row = {
    id: manifest.model.id,
    version: manifest.model.version,
    content_key_id: manifest.contentKeyId,
  };
  let wrapped: string;
  let trace: Awaited<ReturnType<typeof prepareModelTrace>>;
  try {
    trace = await prepareModelTrace(ctx, manifest, body.traceKey, envelope.key);
    wrapped = await ctx.keys.kek.encrypt(envelope.key, kekContext(row));
  } finally {
    envelope.key.fill(0);
  }
  const digest = await manifestDigest(body.manifest);
  await withTransaction(ctx.db, async (tx) => {
    await claimModelId(tx, row.id, actor, ctx.now());
    const exists = await tx
      .selectFrom("models")
      .select("id")
      .where("id", "=", row.id)
      .where("version", "=", row.version)
      .executeTakeFirst();
    if (exists)
      throw new ModelVaultError(
        "ERR_CONFLICT",
        `model ${row.id} version ${row.version} is already registered`,
      );
    await tx
      .insertInto("models")
      .values({
        ...row,
        manifest_digest: digest,
        manifest_jws: body.manifest.trim(),
        wrapped_cek: wrapped,
        kek_id: ctx.keys.kek.id,
        registered_by: actor,
        registered_at: ctx.now(),
        publisher_kid: publisherKid,
        expires_at: manifest.expires ?? null,
      })
      .execute();
    await insertModelTrace(tx, row, trace, actor, ctx.now());
    await appendAudit(
      tx,
      {
        actor,
        action: "model.register",
        outcome: "success",
        subject: `${row.id}@${row.version}`,
        detail: { publisherKid, digest, ...(trace ? { traceSlots: trace.slots } : {}) },
      },
      ctx.now(),
    );
  });
  return {
    id: row.id,
    version: row.version,
    manifestDigest: digest,
    ...(trace ? { traceSlots: trace.slots } : {}),
  };
}
