import type { Kysely } from "kysely";
import { ModelVaultError } from "../../core/errors.js";
import type { Database } from "../db/schema.js";

/** Refuses (404, naming `principalId`) a principal that does not hold the publisher role. */
export async function requirePublisher(tx: Kysely<Database>, principalId: string): Promise<void> {
  const roles = await tx
    .selectFrom("principal_roles")
    .select("role")
    .where("principal_id", "=", principalId)
    .execute();
  if (!roles.some((r) => r.role === "publisher"))
    throw new ModelVaultError("ERR_NOT_FOUND", "no publisher principal with this id", {
      path: "principalId",
    });
}
