import { ModelVaultError } from "../../core/errors.js";
import { appendAudit } from "../audit/audit-log.js";
import type { ServerContext } from "../context.js";
import { withTransaction } from "../db/open-database.js";

/**
 * An auditor marks an anomaly reviewed, with a note: it stops counting as open (a recurrence
 * of an output anomaly is then recorded afresh). Audited; acknowledging twice is a conflict.
 */
export async function acknowledgeAnomaly(
  ctx: ServerContext,
  actor: string,
  id: number,
  note: string,
): Promise<{ id: number; acknowledged: true }> {
  const now = ctx.now();
  await withTransaction(ctx.db, async (tx) => {
    const row = await tx
      .selectFrom("anomalies")
      .select(["kind", "acknowledged_at"])
      .where("id", "=", id)
      .executeTakeFirst();
    if (!row) throw new ModelVaultError("ERR_NOT_FOUND", "no such anomaly");
    const r = await tx
      .updateTable("anomalies")
      .set({ acknowledged_at: now, acknowledged_by: actor, acknowledgement: note })
      .where("id", "=", id)
      .where("acknowledged_at", "is", null)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0)
      throw new ModelVaultError("ERR_CONFLICT", "this anomaly is already acknowledged");
    await appendAudit(
      tx,
      {
        actor,
        action: "anomaly.acknowledge",
        outcome: "success",
        subject: String(id),
        detail: { kind: row.kind, note },
      },
      now,
    );
  });
  return { id, acknowledged: true };
}
