import { errorFromJSON, ModelVaultError } from "../core/errors.js";
import type { CliIo } from "./io.js";

/** The license server the CLI talks to: `MODELVAULT_SERVER`, else the local default. */
export function serverUrl(io: CliIo): string {
  return (io.env.MODELVAULT_SERVER ?? "http://127.0.0.1:8787").replace(/\/$/, "");
}

/**
 * fetch() for the CLI: a failure to connect names the URL it tried and how to point the CLI
 * elsewhere, instead of undici's bare "fetch failed".
 */
export async function fetchServer(url: string, init?: RequestInit): Promise<Response> {
  try {
    return await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) });
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (e as Error).message;
    throw new ModelVaultError(
      "ERR_CLI_SERVER_UNREACHABLE",
      `could not reach the license server at ${new URL(url).origin} (${why}); is it running? Set MODELVAULT_SERVER to its URL`,
      { url },
    );
  }
}

/** Calls the license server's API with the API key from MODELVAULT_API_KEY (never from argv, which `ps` shows). */
export async function api(
  io: CliIo,
  method: string,
  path: string,
  body?: unknown,
): Promise<Record<string, unknown>> {
  const base = serverUrl(io);
  const key = io.env.MODELVAULT_API_KEY;
  if (!key) throw new ModelVaultError("ERR_CLI_USAGE", "set MODELVAULT_API_KEY to an API key");
  const res = await fetchServer(`${base}${path}`, {
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
    throw e ? errorFromJSON(e) : new Error(`${method} ${base}${path}: HTTP ${res.status}`);
  }
  return json;
}
