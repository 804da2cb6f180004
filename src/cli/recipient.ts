import { ModelVaultError } from "../core/errors.js";
import { checkEcJwk, type EcJwk } from "../core/jwk.js";
import { readJsonKeyFile } from "../pack/key-files.js";
import { fetchServer } from "./api-client.js";

const LOCALHOST = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** The `use: "enc"` key of a JWK Set (the server's key-registration key), or the JWK itself. */
function encryptionKey(value: unknown, from: string): unknown {
  const keys = (value as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys)) return value;
  const enc = keys.filter((k) => (k as { use?: string } | null)?.use === "enc");
  if (enc.length !== 1)
    throw new ModelVaultError(
      "ERR_KEY_INVALID",
      `${from} has ${enc.length} keys with "use": "enc"; exactly one (the server's registration key) is needed`,
    );
  return enc[0];
}

/**
 * The key `pack` seals the content key to, from `--recipient`: a running license server's URL
 * (its JWKS at /.well-known/jwks.json), a JWKS file, or a public JWK file. A URL must be https
 * (plain http only on localhost): a key fetched over an open network could be an attacker's.
 */
export async function resolveRecipient(value: string): Promise<EcJwk> {
  if (/^https?:\/\//i.test(value)) {
    const url = new URL(value);
    if (url.protocol !== "https:" && !LOCALHOST.has(url.hostname))
      throw new ModelVaultError(
        "ERR_CLI_USAGE",
        `--recipient ${value}: use https (plain http only on localhost)`,
      );
    const jwksUrl = url.pathname.endsWith(".json") ? url : new URL("/.well-known/jwks.json", url);
    const res = await fetchServer(jwksUrl.toString());
    if (!res.ok)
      throw new ModelVaultError("ERR_KEY_INVALID", `${jwksUrl} answered HTTP ${res.status}, not a JWKS`);
    const jwks = await res.json().catch(() => {
      throw new ModelVaultError("ERR_KEY_INVALID", `${jwksUrl} did not answer JSON`);
    });
    return checkEcJwk(encryptionKey(jwks, jwksUrl.toString()), false, "recipient key", "enc");
  }
  const file = await readJsonKeyFile(value, "recipient key");
  return checkEcJwk(encryptionKey(file, value), false, "recipient key", "enc");
}
