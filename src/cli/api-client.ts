import { errorFromJSON, ModelVaultError } from "../core/errors.js";
import type { CliIo } from "./io.js";

/** Calls the license server's API with the API key from MODELVAULT_API_KEY (never from argv, which `ps` shows). */
export async function api(
  io: CliIo,
  method: string,
  path: string,
  body?: unknown,
): Promise<Record<string, unknown>> {
  const base = (io.env.MODELVAULT_SERVER ?? "http://127.0.0.1:8787").replace(/\/$/, "");
  const key = io.env.MODELVAULT_API_KEY;
  if (!key) throw new ModelVaultError("ERR_CLI_USAGE", "set MODELVAULT_API_KEY to an API key");
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const json = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok) {
    const e = json.error as { code: string; message: string } | undefined;
    throw e ? errorFromJSON(e) : new Error(`HTTP ${res.status}`);
  }
  return json;
}
