import type { ServerContext } from "./context.js";
import { createApiKey } from "./identity/api-key-admin.js";
import { createPrincipal } from "./identity/principals.js";

/**
 * On a fresh database, creates the bootstrap admin and returns its API key (shown once, stored
 * only as a hash). Returns undefined when principals already exist.
 */
export async function bootstrapAdmin(
  ctx: ServerContext,
): Promise<{ principalId: string; token: string } | undefined> {
  const any = await ctx.db.kysely.selectFrom("principals").select("id").limit(1).executeTakeFirst();
  if (any) return undefined;
  const { id } = await createPrincipal(ctx, "bootstrap", { name: "bootstrap admin", roles: ["admin"] });
  const key = await createApiKey(ctx, "bootstrap", id);
  return { principalId: id, token: key.token };
}
