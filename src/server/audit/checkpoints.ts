import { compactVerify, createLocalJWKSet, decodeProtectedHeader, type JSONWebKeySet, SignJWT } from "jose";
import type { Kysely } from "kysely";
import { fromUtf8 } from "../../core/bytes.js";
import { checkJoseHeader } from "../../core/jose-header.js";
import { TYP } from "../../core/token-types.js";
import type { Database } from "../db/schema.js";
import type { SigningKey } from "../keys/server-keys.js";

/** A signed statement "the log had `size` entries and entry `size` hashed to `head`, at time `at`". */
export interface Checkpoint {
  size: number;
  head: string;
  at: number;
  token: string;
}

/**
 * Signs and stores a checkpoint of the current head, inside the caller's transaction. Writers
 * are serialised by locking the audit head row first (a row lock on PostgreSQL, the write lock
 * on SQLite), the lock every append takes too: so across instances a checkpoint always sees the
 * newest earlier one, sizes and times strictly increase, and two writers never race for one
 * size. When nothing was appended since the last checkpoint, returns that one instead.
 */
export async function writeCheckpoint(
  tx: Kysely<Database>,
  key: SigningKey,
  issuer: string,
  now: number,
): Promise<Checkpoint | undefined> {
  const head = await tx
    .updateTable("audit_head")
    .set((eb) => ({ seq: eb.ref("seq") }))
    .where("id", "=", 1)
    .returning(["seq", "hash"])
    .executeTakeFirstOrThrow();
  if (head.seq === 0) return undefined;
  const last = await tx
    .selectFrom("audit_checkpoints")
    .selectAll()
    .orderBy("size", "desc")
    .limit(1)
    .executeTakeFirst();
  if (last && last.size >= head.seq) return last;
  // Checkpoint times strictly increase (RFC 9162: each STH newer than the last), also when
  // this instance's clock is behind the one that wrote the last checkpoint.
  const at = Math.max(now, (last?.at ?? 0) + 1);
  const token = await new SignJWT({ size: head.seq, head: head.hash, at })
    .setProtectedHeader({ alg: "ES256", typ: TYP.checkpoint, kid: key.kid })
    .setIssuer(issuer)
    .setIssuedAt(at)
    .sign(key.privateKey);
  const checkpoint = { size: head.seq, head: head.hash, at, token };
  await tx.insertInto("audit_checkpoints").values(checkpoint).execute();
  return checkpoint;
}

/** Verifies a checkpoint token under the server's JWKS and returns what it states. */
export async function verifyCheckpoint(
  token: string,
  jwks: JSONWebKeySet,
): Promise<Omit<Checkpoint, "token">> {
  const header = decodeProtectedHeader(token);
  const problem = checkJoseHeader(header, { alg: "ES256", typ: TYP.checkpoint });
  if (problem)
    throw new Error(
      `checkpoint header is not {alg: ES256, typ: modelvault-checkpoint+jwt}: ${problem.message}`,
    );
  const keys = createLocalJWKSet(jwks);
  const { payload } = await compactVerify(token, keys, { algorithms: ["ES256"] });
  const claims = JSON.parse(fromUtf8(payload)) as { size: unknown; head: unknown; at: unknown };
  if (
    !Number.isSafeInteger(claims.size) ||
    typeof claims.head !== "string" ||
    !Number.isSafeInteger(claims.at)
  ) {
    throw new Error("checkpoint claims are malformed");
  }
  return { size: claims.size as number, head: claims.head, at: claims.at as number };
}
