import { writeCheckpoint } from "./audit/checkpoints.js";
import type { ServerContext } from "./context.js";
import { pruneExpired } from "./db/housekeeping.js";
import { pruneRetained } from "./db/retention.js";

/** How often each instance looks for work. */
const TICK_MS = 2000;

/**
 * Background work of every instance, one tick at a time (a tick never overlaps the next): an
 * audit checkpoint once `checkpointEvery` entries have passed the newest one (whichever instance
 * wrote it), pruning of expired rows, and of rows past their retention. A failing tick (database down, disk full) is reported
 * to the database's health, which logs the outage once, and retried at the next tick.
 */
export function startMaintenance(ctx: ServerContext): { stop(): Promise<void> } {
  let running: Promise<void> | undefined;
  const tick = async () => {
    const db = ctx.db.kysely;
    const head = await db.selectFrom("audit_head").select("seq").executeTakeFirstOrThrow();
    const last = await db
      .selectFrom("audit_checkpoints")
      .select((eb) => eb.fn.max("size").as("size"))
      .executeTakeFirst();
    if (head.seq - Number(last?.size ?? 0) >= ctx.options.checkpointEvery)
      await ctx.db.transaction((tx) => writeCheckpoint(tx, ctx.keys.current, ctx.issuer, ctx.now()));
    const pruned = await pruneExpired(ctx.db, ctx.now(), ctx.options.dpopWindowSeconds);
    const help = "Expired rows deleted, by table.";
    ctx.metrics.inc("modelvault_pruned_rows_total", help, { table: "dpop_replay" }, pruned.dpopReplay);
    ctx.metrics.inc("modelvault_pruned_rows_total", help, { table: "auth_failures" }, pruned.authFailures);
    if (ctx.options.retentionDays !== null) {
      const retained = await pruneRetained(ctx.db, ctx.now(), ctx.options.retentionDays * 86_400);
      for (const [table, n] of Object.entries(retained))
        ctx.metrics.inc("modelvault_pruned_rows_total", help, { table }, n);
    }
  };
  const timer = setInterval(() => {
    running ??= tick()
      .catch((e) => {
        if (!ctx.db.health.failed(e))
          ctx.logger.log("error", "maintenance failed", { error: String((e as Error)?.stack ?? e) });
      })
      .finally(() => {
        running = undefined;
      });
  }, TICK_MS);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
