import { createRemoteJWKSet, decodeJwt, type JWTVerifyGetKey, errors as joseErrors, jwtVerify } from "jose";
import { isModelVaultError, ModelVaultError } from "../../core/errors.js";
import type { Principal, ServerContext } from "../context.js";
import type { OidcIssuer } from "../options.js";
import { parseApiKey, secretMatches } from "./api-keys.js";

export const MAX_AUTHORIZATION_BYTES = 8 * 1024;

/** Remote JWKS per issuer, created once: jose caches keys and rate-limits refetches (cooldown). */
const jwksCache = new Map<string, JWTVerifyGetKey>();

function remoteJwks(issuer: OidcIssuer): JWTVerifyGetKey {
  let jwks = jwksCache.get(issuer.jwksUri);
  if (!jwks) {
    jwks = createRemoteJWKSet(new URL(issuer.jwksUri), {
      timeoutDuration: 5000,
      cooldownDuration: 30_000,
      cacheMaxAge: 600_000,
    });
    jwksCache.set(issuer.jwksUri, jwks);
  }
  return jwks;
}

async function rolesOf(ctx: ServerContext, principalId: string): Promise<string[]> {
  const rows = await ctx.db.kysely
    .selectFrom("principal_roles")
    .select("role")
    .where("principal_id", "=", principalId)
    .execute();
  return rows.map((r) => r.role);
}

async function fromApiKey(ctx: ServerContext, token: string): Promise<Principal | undefined> {
  const parsed = parseApiKey(token);
  if (!parsed) return undefined;
  const row = await ctx.db.kysely
    .selectFrom("api_keys")
    .innerJoin("principals", "principals.id", "api_keys.principal_id")
    .select([
      "api_keys.secret_hash",
      "api_keys.revoked_at",
      "principals.id as principal_id",
      "principals.disabled_at",
    ])
    .where("api_keys.id", "=", parsed.id)
    .executeTakeFirst();
  // Compare even when no row exists, so timing does not reveal which key ids exist.
  const ok = secretMatches(parsed.secret, row?.secret_hash);
  if (!ok || !row || row.revoked_at !== null || row.disabled_at !== null) return undefined;
  return { id: row.principal_id, roles: await rolesOf(ctx, row.principal_id), via: "api-key" };
}

/**
 * The issuer's keys, where failing to get them (provider down, slow, answering errors or
 * garbage) is ERR_IDP_UNAVAILABLE, a retryable 503: an outage must never read as "your
 * credential is invalid", which clients treat as final. An unknown `kid` in a JWKS that was
 * fetched is the token's fault and stays a refusal.
 */
function issuerKeys(issuer: OidcIssuer): JWTVerifyGetKey {
  const jwks = remoteJwks(issuer);
  return async (header, token) => {
    try {
      return await jwks(header, token);
    } catch (cause) {
      if (
        cause instanceof joseErrors.JWKSNoMatchingKey ||
        cause instanceof joseErrors.JWKSMultipleMatchingKeys
      )
        throw cause;
      throw new ModelVaultError(
        "ERR_IDP_UNAVAILABLE",
        "the identity provider's keys could not be fetched; retry shortly",
        { retryAfter: 5 },
        { cause },
      );
    }
  };
}

async function fromIdToken(ctx: ServerContext, token: string): Promise<Principal | undefined> {
  let iss: unknown;
  try {
    iss = decodeJwt(token).iss;
  } catch {
    return undefined;
  }
  const issuer = ctx.options.oidc.find((i) => i.issuer === iss);
  if (!issuer) return undefined;
  let subject: string;
  try {
    const { payload } = await jwtVerify(token, issuerKeys(issuer), {
      issuer: issuer.issuer,
      audience: issuer.audience,
      algorithms: ["RS256", "ES256", "PS256"],
      requiredClaims: ["sub", "exp", "iat"],
      currentDate: new Date(ctx.now() * 1000),
    });
    subject = String(payload.sub);
  } catch (e) {
    if (isModelVaultError(e, "ERR_IDP_UNAVAILABLE")) throw e;
    return undefined;
  }
  // Outside the try: a database fault is the server's problem, not a bad credential.
  const row = await ctx.db.kysely
    .selectFrom("principals")
    .select(["id", "disabled_at"])
    .where("oidc_issuer", "=", issuer.issuer)
    .where("oidc_subject", "=", subject)
    .executeTakeFirst();
  if (!row || row.disabled_at !== null) return undefined;
  return { id: row.id, roles: await rolesOf(ctx, row.id), via: "oidc" };
}

/**
 * Authenticates `Authorization: Bearer <credential>`: an API key, or an ID token from a
 * configured OIDC issuer. Returns undefined for a bad credential (the caller counts the failure);
 * throws ERR_IDP_UNAVAILABLE (503, not a failure of the caller) when the issuer cannot be reached.
 */
export async function authenticate(
  ctx: ServerContext,
  authorization: string | undefined,
): Promise<Principal | undefined> {
  if (!authorization) throw new ModelVaultError("ERR_AUTH_REQUIRED");
  if (authorization.length > MAX_AUTHORIZATION_BYTES)
    throw new ModelVaultError("ERR_HEADERS_TOO_LARGE", "Authorization header too large");
  const m = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(authorization);
  if (!m) throw new ModelVaultError("ERR_AUTH_REQUIRED", "use Authorization: Bearer <API key or ID token>");
  const token = m[1] as string;
  return token.startsWith("mvk_") ? fromApiKey(ctx, token) : fromIdToken(ctx, token);
}

/**
 * Who a credential claims to be, before it is checked: `key:<id>` for an API key, `oidc:<iss> <sub>`
 * for an ID token (decoded, not verified). Failed authentications are counted per claimed
 * identity, so guessing one key's secret is slowed without touching anyone else. Undefined for
 * a credential that claims nothing.
 */
export function claimedIdentity(authorization: string | undefined): string | undefined {
  const m = /^Bearer ([A-Za-z0-9._~+/=-]{1,8192})$/.exec(authorization ?? "");
  const token = m?.[1];
  if (!token) return undefined;
  const key = /^mvk_([A-Za-z0-9_-]{12})_/.exec(token);
  if (key) return `key:${key[1]}`;
  try {
    const { iss, sub } = decodeJwt(token);
    // Bounded: the identity is a key in an index (PostgreSQL refuses index rows over ~2.7 KB).
    if (typeof iss === "string" && typeof sub === "string" && iss.length + sub.length <= 1000)
      return `oidc:${iss} ${sub}`;
  } catch {}
  return undefined;
}

/** Whether a claimed identity exists and may sign in: an API key not revoked, an OIDC principal not disabled. */
export async function identityIsActive(ctx: ServerContext, identity: string): Promise<boolean> {
  if (identity.startsWith("key:")) {
    const row = await ctx.db.kysely
      .selectFrom("api_keys")
      .innerJoin("principals", "principals.id", "api_keys.principal_id")
      .select("api_keys.id")
      .where("api_keys.id", "=", identity.slice(4))
      .where("api_keys.revoked_at", "is", null)
      .where("principals.disabled_at", "is", null)
      .executeTakeFirst();
    return row !== undefined;
  }
  const claim = identity.slice(5);
  const iss = claim.slice(0, claim.indexOf(" "));
  const sub = claim.slice(claim.indexOf(" ") + 1);
  const row = await ctx.db.kysely
    .selectFrom("principals")
    .select("id")
    .where("oidc_issuer", "=", iss)
    .where("oidc_subject", "=", sub)
    .where("disabled_at", "is", null)
    .executeTakeFirst();
  return row !== undefined;
}
