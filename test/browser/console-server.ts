/**
 * A license server for the console specs, on SQLite or PostgreSQL (MODELVAULT_TEST_PG_URL),
 * serving a freshly built console at /console/, with an admin, a publisher, a licensor and an
 * auditor, and the digits model packed (into fixtures-out/, which the test pages' Vite serves)
 * twice: plain, and with a signed monitoring policy whose baseline is the class counts of
 * held-out digits the devices never see.
 */
import { randomBytes } from "node:crypto";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { loadDigits } from "../../models/digits/dataset.js";
import { buildConsole } from "../../scripts/build-console.js";
import { apiCall, createPrincipal, packAndRegister } from "../../scripts/provision.js";
import { generateKeyPairJwk } from "../../src/pack/keygen.js";
import { bootstrapAdmin } from "../../src/server/bootstrap.js";
import type { DatabaseConfig } from "../../src/server/db/open-database.js";
import { startServer } from "../../src/server/start-server.js";

const OUT = fileURLToPath(new URL("./fixtures-out/", import.meta.url));
const DIGITS = fileURLToPath(new URL("../../models/digits/digits.onnx", import.meta.url));

export const PG_URL = process.env.MODELVAULT_TEST_PG_URL;
export const DIALECTS: ("sqlite" | "postgres")[] = PG_URL ? ["sqlite", "postgres"] : ["sqlite"];

/** Held-out digits: devices use the first 600; the declared baseline counts the rest. */
export const HELD_OUT = loadDigits().heldOut;
export const DEVICE_DIGITS = HELD_OUT.slice(0, 600);

type Principal = { id: string; token: string };

export interface ConsoleServer {
  url: string;
  admin: string;
  publisher: Principal;
  licensor: Principal;
  auditor: Principal;
  publisherKey: Record<string, string>;
  /** Path of each packed model under the test pages' origin. */
  manifests: { digits: string; monitored: string };
  call: ReturnType<typeof apiCall>;
  sql(query: string): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

async function database(dialect: "sqlite" | "postgres", dataDir: string) {
  if (dialect === "sqlite") {
    const file = join(dataDir, "modelvault.sqlite");
    return { config: { kind: "sqlite", file } as DatabaseConfig, drop: async () => {} };
  }
  const name = `mv_console_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(PG_URL as string);
  url.pathname = `/${name}`;
  return {
    config: { kind: "postgres", url: url.toString() } as DatabaseConfig,
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

export async function startConsoleServer(
  dialect: "sqlite" | "postgres",
  pagesOrigin: string,
): Promise<ConsoleServer> {
  const dir = join(OUT, `console-${dialect}`);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const consoleDir = join(dir, "console");
  await buildConsole(consoleDir);
  const db = await database(dialect, dir);
  const server = await startServer({
    dataDir: dir,
    port: 0,
    database: db.config,
    consoleDir,
    corsOrigins: [pagesOrigin],
    log: () => {},
  });
  const admin = (await bootstrapAdmin(server.ctx))?.token as string;
  const call = apiCall(server.url);
  const publisher = await createPrincipal(call, admin, "publisher", ["publisher"]);
  const licensor = await createPrincipal(call, admin, "licensor", ["licensor"]);
  const auditor = await createPrincipal(call, admin, "auditor", ["auditor"]);
  const keys = await generateKeyPairJwk("sig");
  await call(admin, "POST", "/v1/admin/publisher-keys", { jwk: keys.publicJwk, principalId: publisher.id });
  const baseline = new Array(10).fill(0);
  for (const d of HELD_OUT.slice(600)) baseline[d.label]++;
  const pack = (id: string, monitoring?: Parameters<typeof packAndRegister>[1]["monitoring"]) =>
    packAndRegister(call, {
      publisherToken: publisher.token,
      signingKey: keys.privateJwk,
      registrationKey: server.ctx.keys.registration.publicJwk,
      modelPath: DIGITS,
      id,
      version: 1,
      outDir: join(dir, id),
      shardSize: 64 * 1024,
      ...(monitoring ? { monitoring } : {}),
    });
  await pack("digits");
  await pack("digits-monitored", {
    minCount: 50,
    outputs: [{ output: "probabilities", kind: "classes", classes: 10, baseline }],
  });
  const page = (id: string) => `/test/browser/fixtures-out/console-${dialect}/${id}/manifest.jws`;
  return {
    url: server.url,
    admin,
    publisher,
    licensor,
    auditor,
    publisherKey: keys.publicJwk,
    manifests: { digits: page("digits"), monitored: page("digits-monitored") },
    call,
    async sql(query) {
      const { sql } = await import("kysely");
      return (await sql.raw<Record<string, unknown>>(query).execute(server.ctx.db.kysely)).rows;
    },
    async close() {
      await server.close();
      await db.drop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
