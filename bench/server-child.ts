/** The license server for bench:server, in its own process; prints {url, admin} on stdout. */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bootstrapAdmin } from "../src/server/bootstrap.js";
import { startServer } from "../src/server/start-server.js";

const server = await startServer({
  dataDir: await mkdtemp(join(tmpdir(), "mv-bench-")),
  port: 0,
  log: () => {},
  rateLimits: { perPrincipalPerMinute: 1e9, authFailuresPerMinute: 1e9 },
  anomalyThresholds: { requestSpikePerMinute: 1e9, denialBurstPerMinute: 1e9 },
});
const boot = await bootstrapAdmin(server.ctx);
process.stdout.write(`${JSON.stringify({ url: server.url, admin: boot?.token })}\n`);
process.on("SIGTERM", () => server.close().then(() => process.exit(0)));
