import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiCall } from "../../../scripts/provision.js";
import { openDatabase } from "../../../src/server/db/open-database.js";
import { runCli } from "../../cli/run-cli.js";
import { PG_URL } from "../databases.js";
import { checkAccounting } from "./check-accounting.js";
import { createDatabase, ensureRunning, localCluster, pgCtl, query } from "./postgres-cluster.js";
import { type ServeProcess, spawnServe, waitFor } from "./serve-process.js";
import { type Outcome, provision, SimDevice } from "./sim-device.js";

const PUBLIC = "http://modelvault.test";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!PG_URL)("three modelvault serve instances on one PostgreSQL", () => {
  let database: Awaited<ReturnType<typeof createDatabase>>;
  let instances: ServeProcess[] = [];
  let admin: string;
  let setup: Awaited<ReturnType<typeof provision>>;
  let dataDir: string;

  beforeAll(async () => {
    database = await createDatabase();
    dataDir = await mkdtemp(join(tmpdir(), "mv-pg-fault-"));
  });
  afterAll(async () => {
    await Promise.all(instances.map((p) => p.stop()));
    await database?.drop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("exactly one of three instances started together on an empty database creates the bootstrap admin", async () => {
    // One data directory for all three: they also race to create the key files, and must agree.
    instances = await Promise.all(
      [0, 1, 2].map(() =>
        spawnServe(["--data", dataDir, "--public-url", PUBLIC], {
          env: { MODELVAULT_DATABASE_URL: database.url },
        }),
      ),
    );
    const keys = instances.map((p) => p.bootstrapKey).filter(Boolean);
    expect(keys).toHaveLength(1);
    admin = keys[0] as string;
    const rows = await query(database.url, "select count(*)::int as n from principals");
    expect(rows[0].n).toBe(1);
    setup = await provision(instances[0]?.url as string, admin);
  });

  it("survives pg_terminate_backend of its idle connections, and serves the next request", async () => {
    for (const p of instances)
      expect((await fetch(`${p.url}/v1/admin/principals`, auth(admin))).status).toBe(200);
    const killed = await query(
      PG_URL as string,
      "select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and state = 'idle' and pid <> pg_backend_pid()",
      [database.name],
    );
    expect(killed.length).toBeGreaterThan(0);
    await sleep(300);
    for (const p of instances) {
      expect(p.alive(), p.stderr).toBe(true);
      expect((await fetch(`${p.url}/v1/admin/principals`, auth(admin))).status).toBe(200);
    }
  });

  it("concurrent checkpoint writers on three instances never fail, and audit verify --postgres passes", async () => {
    const call = (i: number) => apiCall(instances[i % 3]?.url as string);
    const results = await Promise.allSettled(
      Array.from({ length: 60 }, (_, i) =>
        i % 2 === 0
          ? call(i)(admin, "POST", "/v1/audit/checkpoints")
          : call(i)(admin, "POST", "/v1/admin/principals", { name: `p${i}` }),
      ),
    );
    expect(results.filter((r) => r.status === "rejected")).toEqual([]);
    const jwks = join(dataDir, "jwks.json");
    await writeFile(jwks, await (await fetch(`${instances[0]?.url}/.well-known/jwks.json`)).text());
    const verify = await runCli(["audit", "verify", "--jwks", jwks], {
      MODELVAULT_DATABASE_URL: database.url,
    });
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/^ok: \d+ entries chain correctly; \d+ checkpoints verify/);
  });

  it("survives a PostgreSQL restart under load: all alive, 503 with Retry-After (never 500), nothing acknowledged lost", async (t) => {
    const cluster = localCluster();
    if ("skip" in cluster) {
      console.warn(`SKIPPED PostgreSQL restart test: ${cluster.skip}`);
      t.skip();
      return;
    }
    const devices = await Promise.all(
      Array.from({ length: 6 }, async (_, i) =>
        SimDevice.create((await setup.client(`client-${i}`)).token, setup.digest, PUBLIC),
      ),
    );
    const outcomes: Outcome[] = [];
    let stop = false;
    let turn = 0;
    const load = Promise.all(
      devices.map(async (d) => {
        while (!stop) outcomes.push(await d.step(instances[turn++ % 3]?.url as string));
      }),
    );
    try {
      await sleep(1500);
      await pgCtl(cluster, "restart");
      await sleep(3000);
    } finally {
      stop = true;
      await load;
      await ensureRunning(cluster);
    }
    for (const d of devices)
      for (let i = 0; i < 3; i++) outcomes.push(await d.step(instances[i]?.url as string));

    for (const p of instances) expect(p.alive(), p.stderr).toBe(true);
    const unexpected = outcomes.filter((o) => o.status !== 200 && o.status !== 503);
    expect(unexpected).toEqual([]);
    const unavailable = outcomes.filter((o) => o.status === 503);
    expect(unavailable.length, "no request saw the outage").toBeGreaterThan(0);
    for (const o of unavailable) {
      expect(o.code).toBe("ERR_DB_UNAVAILABLE");
      expect(Number(o.retryAfter)).toBeGreaterThan(0);
    }
    // Served again without a restart, and each instance logged the outage and the recovery once.
    for (const p of instances) {
      expect((await fetch(`${p.url}/v1/admin/principals`, auth(admin))).status).toBe(200);
      await waitFor("the recovery log line", () => p.logs.some((l) => l.msg === "database available again"));
      expect(p.logs.filter((l) => l.msg === "unhandled error")).toEqual([]);
    }
    const db = await openDatabase({ kind: "postgres", url: database.url, poolSize: 2 }, { readOnly: true });
    try {
      expect(await checkAccounting(db, devices)).toEqual([]);
    } finally {
      await db.close();
    }
    console.info(
      `PostgreSQL restart under load: ${outcomes.length} requests, ${unavailable.length} answered 503, ` +
        `${devices.reduce((n, d) => n + d.acked.size, 0)} reports and ` +
        `${devices.reduce((n, d) => n + d.licenses.length, 0)} licenses acknowledged`,
    );
  });
});

function auth(token: string): RequestInit {
  return { headers: { authorization: `Bearer ${token}` } };
}
