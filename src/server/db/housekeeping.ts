import type { Db } from "./open-database.js";

/** Rows deleted per statement, so a backlog never holds the write lock for long. */
const BATCH = 5000;
/** Statements per table per call: a call stays bounded; the next call continues. */
const MAX_BATCHES = 20;

export interface PruneResult {
  dpopReplay: number;
  authFailures: number;
}

/**
 * Deletes rows that can no longer matter: DPoP replay entries whose proofs no instance can
 * accept any more, and failed-authentication counters of past minutes.
 *
 * A replay entry expires when its proof's `iat` leaves the acceptance window (expires_at is the
 * verifying instance's time + 2 × window + 1). Instances' clocks differ, so an entry is kept
 * `skewSeconds` longer: an instance whose clock is that far behind the pruning one still
 * refuses the replay.
 */
export async function pruneExpired(db: Db, now: number, skewSeconds: number): Promise<PruneResult> {
  const replayBefore = now - skewSeconds;
  const windowBefore = Math.floor(now / 60) * 60 - 60;
  return {
    dpopReplay: await inBatches(async () => {
      const r = await db.kysely
        .deleteFrom("dpop_replay")
        .where("key", "in", (eb) =>
          eb.selectFrom("dpop_replay").select("key").where("expires_at", "<", replayBefore).limit(BATCH),
        )
        .executeTakeFirst();
      return Number(r.numDeletedRows);
    }),
    authFailures: await inBatches(async () => {
      const r = await db.kysely
        .deleteFrom("auth_failures")
        .where("window_start", "<", windowBefore)
        .executeTakeFirst();
      return Number(r.numDeletedRows);
    }),
  };
}

async function inBatches(deleteBatch: () => Promise<number>): Promise<number> {
  let total = 0;
  for (let i = 0; i < MAX_BATCHES; i++) {
    const n = await deleteBatch();
    total += n;
    if (n < BATCH) break;
  }
  return total;
}
