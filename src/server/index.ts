/**
 * `modelvault/server`: the license server (Node), for apps that embed it rather than run
 * `modelvault serve`. Needs a database driver: `npm install better-sqlite3@12` (the default,
 * embedded SQLite) or `npm install pg` (PostgreSQL, for several instances).
 *
 * @example
 * import { startServer } from "modelvault/server";
 * const server = await startServer({ dataDir: ".data/server", port: 8787 });
 * const admin = await server.bootstrapAdmin(); // { principalId, token } on a fresh database, else undefined
 * // seal packages to server.registrationKey (`modelvault pack --recipient <server URL>`)
 * await server.close();
 */
import type { EcJwk } from "../core/jwk.js";
import { bootstrapAdmin } from "./bootstrap.js";
import type { ServerOptions } from "./options.js";
import { startServer as start } from "./start-server.js";

export { type AuditVerifyReport, verifyAuditLog } from "./audit/verify-audit.js";
export type { DatabaseConfig, OidcIssuer, ServerOptions } from "./options.js";

/** A running license server. */
export interface LicenseServer {
  /** The base URL it listens on, e.g. `http://127.0.0.1:8787`. */
  readonly url: string;
  /** The public key-registration key (ECDH P-256): `pack` seals content keys to it. */
  readonly registrationKey: EcJwk;
  /**
   * On a fresh database, creates the bootstrap admin and returns its API key (shown once,
   * stored only as a hash); on a database that has principals, returns undefined.
   */
  bootstrapAdmin(): Promise<{ principalId: string; token: string } | undefined>;
  /** Graceful stop: finishes in-flight requests, checkpoints the audit log, closes the database. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts the license server: HTTPS when `tls` is given, else HTTP (for localhost or behind a
 * TLS proxy). Creates the data directory and any missing keys on first start.
 */
export async function startServer(options: ServerOptions): Promise<LicenseServer> {
  const running = await start(options);
  return {
    url: running.url,
    get registrationKey() {
      return running.ctx.keys.registration.publicJwk;
    },
    bootstrapAdmin: () => bootstrapAdmin(running.ctx),
    close: () => running.close(),
  };
}
