import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** What test/browser/serve.ts provisioned. */
export interface BrowserEnv {
  origin: string;
  licenseServer: string;
  admin: string;
  licensor: { id: string; token: string };
  publisherKey: Record<string, string>;
  licenseKeys: Record<string, string>[];
  digest: string;
}

export function browserEnv(): BrowserEnv {
  return JSON.parse(readFileSync(fileURLToPath(new URL("./fixtures-out/env.json", import.meta.url)), "utf8"));
}

/** Creates a client principal with an entitlement; returns its API key. */
async function call(token: string, url: string, body?: unknown) {
  const r = await fetch(url, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return (await r.json()) as Record<string, string>;
}

/** Entitles a principal to a model (digits unless `grant` says otherwise); returns the entitlement id. */
export async function entitle(
  env: BrowserEnv,
  principalId: string,
  grant: Record<string, unknown> = {},
): Promise<string> {
  const e = await call(env.licensor.token, `${env.licenseServer}/v1/entitlements`, {
    principalId,
    modelId: "digits",
    scopes: ["infer", "offline"],
    quota: 100_000,
    periodSeconds: 86400,
    licenseAllowance: 10_000,
    maxDevices: 5,
    licenseTtlSeconds: 600,
    offlineSeconds: 3600,
    expiresAt: Math.floor(Date.now() / 1000) + 30 * 86400,
    ...grant,
  });
  return e.id as string;
}

export async function newClient(
  env: BrowserEnv,
  grant: Record<string, unknown> = {},
): Promise<{ id: string; token: string; entitlement: string }> {
  const p = await call(env.admin, `${env.licenseServer}/v1/admin/principals`, {
    name: `client-${Math.random()}`,
    roles: ["client"],
  });
  const key = await call(env.admin, `${env.licenseServer}/v1/admin/principals/${p.id}/api-keys`);
  const entitlement = await entitle(env, p.id as string, grant);
  return { id: p.id as string, token: key.token as string, entitlement };
}
