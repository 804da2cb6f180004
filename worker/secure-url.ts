import { ModelVaultError } from "../src/core/errors.js";

const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** Resolves a URL and refuses plain http: except on loopback (ERR_INSECURE_URL). */
export function secureUrl(value: string, base?: string): URL {
  let url: URL;
  try {
    url = new URL(value, base);
  } catch {
    throw new ModelVaultError("ERR_INSECURE_URL", `not a URL: ${value}`);
  }
  if (url.protocol === "https:") return url;
  if (url.protocol === "http:" && (LOOPBACK.has(url.hostname) || url.hostname.endsWith(".localhost")))
    return url;
  throw new ModelVaultError(
    "ERR_INSECURE_URL",
    `refusing ${url.protocol} ${url.host}: use https (plain http only on localhost)`,
  );
}
