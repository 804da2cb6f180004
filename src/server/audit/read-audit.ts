import type { Db } from "../db/open-database.js";
import type { AuditEntry } from "./audit-chain.js";

/** Streams the audit log in sequence order, a page at a time (keyset pagination on seq). */
export async function* auditEntries(db: Db, pageSize = 5000): AsyncGenerator<AuditEntry> {
  let after = 0;
  for (;;) {
    const page = await db.kysely
      .selectFrom("audit_log")
      .selectAll()
      .where("seq", ">", after)
      .orderBy("seq")
      .limit(pageSize)
      .execute();
    yield* page;
    const last = page.at(-1);
    if (!last || page.length < pageSize) return;
    after = last.seq;
  }
}

/** Every stored checkpoint token, smallest size first. */
export async function checkpointTokens(db: Db): Promise<string[]> {
  const rows = await db.kysely.selectFrom("audit_checkpoints").select("token").orderBy("size").execute();
  return rows.map((r) => r.token);
}
