import { randomBytes } from "node:crypto";
import { appendAudit } from "./audit/audit-log.js";
import { generateApiKey } from "./auth/api-keys.js";
import type { ServerContext } from "./context.js";

/**
 * On a fresh database, creates the bootstrap admin and returns its API key (shown once, stored
 * only as a hash). Returns undefined when the database was already bootstrapped or has
 * principals.
 *
 * Exactly one caller ever creates it, however many instances start at once: the claim (a
 * `bootstrap` row whose key is unique), the principal, its role, its key and the audit entry
 * commit in one transaction. A second instance's claim waits on the first's row lock
 * (PostgreSQL) or write lock (SQLite) and then finds the row; an instance killed before the
 * commit leaves nothing, and the next start bootstraps afresh.
 */
export async function bootstrapAdmin(
  ctx: ServerContext,
  o: {
    /**
     * Shows the key, called before the transaction commits: a process killed after the commit
     * would otherwise lose the only admin key. If the commit then fails, nothing was created and
     * the next start shows a new key.
     */
    show?: (token: string) => void;
  } = {},
): Promise<{ principalId: string; token: string } | undefined> {
  const id = `p_${randomBytes(9).toString("base64url")}`;
  const key = generateApiKey();
  const now = ctx.now();
  return ctx.db.transaction(async (tx) => {
    const claim = await tx
      .insertInto("server_secrets")
      .values({ name: "bootstrap", value: id })
      .onConflict((oc) => oc.column("name").doNothing())
      .executeTakeFirst();
    if (Number(claim.numInsertedOrUpdatedRows ?? 0) === 0) return undefined;
    // A database from before the claim row existed: bootstrapped already if anyone is there.
    if (await tx.selectFrom("principals").select("id").limit(1).executeTakeFirst()) return undefined;
    await tx
      .insertInto("principals")
      .values({
        id,
        name: "bootstrap admin",
        oidc_issuer: null,
        oidc_subject: null,
        created_at: now,
        disabled_at: null,
      })
      .execute();
    await tx.insertInto("principal_roles").values({ principal_id: id, role: "admin" }).execute();
    await tx
      .insertInto("api_keys")
      .values({
        id: key.id,
        principal_id: id,
        secret_hash: key.secretHash,
        created_at: now,
        revoked_at: null,
      })
      .execute();
    await appendAudit(
      tx,
      {
        actor: "bootstrap",
        action: "principal.create",
        outcome: "success",
        subject: id,
        detail: { name: "bootstrap admin", roles: ["admin"] },
      },
      now,
    );
    await appendAudit(
      tx,
      {
        actor: "bootstrap",
        action: "api-key.create",
        outcome: "success",
        subject: id,
        detail: { keyId: key.id },
      },
      now,
    );
    o.show?.(key.token);
    return { principalId: id, token: key.token };
  });
}
