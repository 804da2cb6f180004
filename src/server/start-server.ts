import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { chmod, mkdir } from "node:fs/promises";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { ModelVaultError } from "../core/errors.js";
import { writeCheckpoint } from "./audit/checkpoints.js";
import { DpopNonces } from "./auth/dpop-nonce.js";
import type { ServerContext } from "./context.js";
import { classifyDbError } from "./db/db-errors.js";
import { type Db, openDatabase } from "./db/open-database.js";
import { createApp } from "./http/app.js";
import { loadServerKeys } from "./keys/server-keys.js";
import { startMaintenance } from "./maintenance.js";
import { Logger } from "./monitoring/logger.js";
import { Metrics } from "./monitoring/metrics.js";
import { resolveOptions, type ServerOptions } from "./options.js";

export interface RunningServer {
  /** The base URL it listens on, e.g. http://127.0.0.1:8787. */
  url: string;
  ctx: ServerContext;
  /** Graceful stop: refuse new requests, finish in-flight ones, checkpoint the audit log, close the database. Idempotent. */
  close(): Promise<void>;
}

/** The DPoP nonce secret, shared by every instance through the database. */
async function nonceSecret(db: Db): Promise<Buffer> {
  await db.kysely
    .insertInto("server_secrets")
    .values({ name: "dpop-nonce", value: randomBytes(32).toString("base64url") })
    .onConflict((oc) => oc.column("name").doNothing())
    .execute();
  const row = await db.kysely
    .selectFrom("server_secrets")
    .select("value")
    .where("name", "=", "dpop-nonce")
    .executeTakeFirstOrThrow();
  return Buffer.from(row.value, "base64url");
}

/** Builds the server context (database, keys, metrics) without listening; tests use it with app.request(). */
export async function createServerContext(options: ServerOptions): Promise<ServerContext> {
  const o = resolveOptions(options);
  const logger = new Logger(o.log);
  // The data directory holds the keys and the SQLite file: private to this user, also when it existed.
  await mkdir(o.dataDir, { recursive: true, mode: 0o700 });
  await chmod(o.dataDir, 0o700);
  const db = await openDatabase(o.database, {
    log: (level, msg, fields) => logger.log(level, msg, fields),
  }).catch((e: unknown) => {
    // Say what is wrong without the connection string (it may carry a password).
    if (classifyDbError(e) !== "unavailable") throw e;
    throw new ModelVaultError(
      "ERR_DB_UNAVAILABLE",
      `cannot reach the database to start (${(e as Error).message}); start again once it is up`,
      { retryAfter: 5 },
    );
  });
  let keys = await loadServerKeys({ dir: join(o.dataDir, "keys"), env: o.env });
  const issuer = (o.publicUrl ?? `${o.tls ? "https" : "http"}://${o.host}:${o.port}`).replace(/\/$/, "");
  return {
    db,
    get keys() {
      return keys;
    },
    setKeys(k) {
      keys = k;
    },
    options: o,
    issuer,
    nonces: new DpopNonces(await nonceSecret(db), o.now),
    metrics: new Metrics(),
    logger,
    now: o.now,
  };
}

/**
 * Starts the license server: HTTPS when given a certificate, else HTTP (meant for localhost or
 * behind a TLS proxy). Tight header and request timeouts cut slow clients off.
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const ctx = await createServerContext(options);
  const o = ctx.options;
  const state = { draining: false };
  const app = createApp(ctx, state);
  const { headersMs = 10_000, requestMs = 30_000, keepAliveMs = 5_000 } = o.timeouts;
  // Node checks the header and request timeouts of incomplete requests only every
  // connectionsCheckingInterval (default 30 s): check often enough for the limits to hold.
  const timeouts = {
    headersTimeout: headersMs,
    requestTimeout: requestMs,
    keepAliveTimeout: keepAliveMs,
    connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(headersMs / 4))),
  };
  const server = serve({
    fetch: app.fetch,
    hostname: o.host,
    port: o.port,
    ...(o.tls
      ? {
          createServer: createHttpsServer,
          serverOptions: {
            cert: readFileSync(o.tls.certFile),
            key: readFileSync(o.tls.keyFile),
            ...timeouts,
          },
        }
      : { serverOptions: timeouts }),
  });
  const http = server as unknown as import("node:http").Server;
  await new Promise<void>((resolve, reject) => {
    if (http.listening) resolve();
    http.once("listening", () => resolve());
    http.once("error", reject);
  });
  const address = http.address() as AddressInfo;
  const url = `${o.tls ? "https" : "http"}://${o.host}:${address.port}`;
  if (!o.publicUrl && o.port === 0) (ctx as { issuer: string }).issuer = url;
  const maintenance = startMaintenance(ctx);
  let closing: Promise<void> | undefined;
  return {
    url,
    ctx,
    close() {
      closing ??= (async () => {
        state.draining = true;
        await maintenance.stop();
        await new Promise<void>((resolve) => {
          const force = setTimeout(() => {
            http.closeAllConnections();
            resolve();
          }, o.shutdownGraceMs);
          http.close(() => {
            clearTimeout(force);
            resolve();
          });
          http.closeIdleConnections();
        });
        await ctx.db
          .transaction((tx) => writeCheckpoint(tx, ctx.keys.current, ctx.issuer, ctx.now()))
          .catch((e) => ctx.db.health.failed(e));
        await ctx.db.close();
      })();
      return closing;
    },
  };
}
