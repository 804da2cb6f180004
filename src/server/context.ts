import type { DpopNonces } from "./auth/dpop-nonce.js";
import type { Db } from "./db/open-database.js";
import type { ServerKeys } from "./keys/server-keys.js";
import type { Logger } from "./monitoring/logger.js";
import type { Metrics } from "./monitoring/metrics.js";
import type { ResolvedOptions } from "./options.js";

/** What every route handler may use; built once per server (shaka-style narrow interface). */
export interface ServerContext {
  db: Db;
  keys: ServerKeys;
  /** Replaced on key rotation. */
  setKeys(keys: ServerKeys): void;
  options: ResolvedOptions;
  issuer: string;
  nonces: DpopNonces;
  metrics: Metrics;
  logger: Logger;
  now(): number;
}

/** The authenticated caller of a request. */
export interface Principal {
  id: string;
  roles: string[];
  via: "api-key" | "oidc";
}
