/**
 * One license-server instance for bench:server, in its own process; prints {url, admin} on
 * stdout. argv: data directory (shared by instances, so they share keys). Environment:
 * MODELVAULT_DATABASE_URL for PostgreSQL (else SQLite in the data directory), and
 * MODELVAULT_BENCH_PUBLIC_URL, the origin every instance names in licenses and DPoP `htu`.
 */
import { bootstrapAdmin } from "../src/server/bootstrap.js";
import { startServer } from "../src/server/start-server.js";

const dataDir = process.argv[2] as string;
const pg = process.env.MODELVAULT_DATABASE_URL;
const server = await startServer({
  dataDir,
  port: 0,
  log: () => {},
  ...(pg ? { database: { kind: "postgres" as const, url: pg, poolSize: 10 } } : {}),
  ...(process.env.MODELVAULT_BENCH_PUBLIC_URL ? { publicUrl: process.env.MODELVAULT_BENCH_PUBLIC_URL } : {}),
  rateLimits: { perPrincipalPerMinute: 1e9, authFailuresPerMinute: 1e9 },
  anomalyThresholds: { requestSpikePerMinute: 1e9, denialBurstPerMinute: 1e9 },
});
const boot = await bootstrapAdmin(server.ctx);
process.stdout.write(`${JSON.stringify({ url: server.url, admin: boot?.token })}\n`);
process.on("SIGTERM", () => server.close().then(() => process.exit(0)));
