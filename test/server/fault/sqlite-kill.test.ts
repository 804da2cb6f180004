import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openDatabase } from "../../../src/server/db/open-database.js";
import { runCli } from "../../cli/run-cli.js";
import { checkAccounting } from "./check-accounting.js";
import { scratchDir, spawnServe } from "./serve-process.js";
import { type Outcome, provision, SimDevice } from "./sim-device.js";

const KILLS = 12;
const DEVICES = 6;
const PUBLIC = "http://modelvault.test";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("kill -9 of a SQLite server under load", () => {
  it(`loses no acknowledged report or license and counts nothing twice over ${KILLS} kills`, async () => {
    const dir = await scratchDir("mv-kill-");
    const args = ["--data", dir, "--public-url", PUBLIC];
    let server = await spawnServe(args);
    const admin = server.bootstrapKey as string;
    const { digest, client } = await provision(server.url, admin);
    const devices = await Promise.all(
      Array.from({ length: DEVICES }, async (_, i) =>
        SimDevice.create((await client(`client-${i}`)).token, digest, PUBLIC),
      ),
    );
    const outcomes: Outcome[] = [];
    const load = (url: string) => {
      let stop = false;
      const done = Promise.all(
        devices.map(async (d) => {
          while (!stop) outcomes.push(await d.step(url));
        }),
      );
      return async () => {
        stop = true;
        await done;
      };
    };
    for (let kill = 0; kill < KILLS; kill++) {
      const stopLoad = load(server.url);
      // A random moment under load: mid-transaction, mid-fsync, mid-response, between requests.
      await sleep(150 + Math.random() * 450);
      server.child.kill("SIGKILL");
      await server.exited;
      await stopLoad();
      server = await spawnServe(args);
      expect(server.bootstrapKey, "a restart must not bootstrap again").toBeUndefined();
    }
    // Let every device get its last report acknowledged, then stop cleanly.
    for (const d of devices) for (let i = 0; i < 3; i++) outcomes.push(await d.step(server.url));
    await server.stop();

    const statuses = new Set(outcomes.map((o) => o.status));
    expect([...statuses].filter((s) => s !== 200 && s !== "network")).toEqual([]);
    const acked = devices.reduce((n, d) => n + d.acked.size, 0);
    expect(acked).toBeGreaterThan(KILLS * 5);

    const db = await openDatabase(
      { kind: "sqlite", file: join(dir, "modelvault.sqlite") },
      { readOnly: true },
    );
    try {
      expect(await checkAccounting(db, devices)).toEqual([]);
    } finally {
      await db.close();
    }
    const jwks = join(dir, "jwks.json");
    const restarted = await spawnServe(args);
    await writeFile(jwks, await (await fetch(`${restarted.url}/.well-known/jwks.json`)).text());
    await restarted.stop();
    const verify = await runCli(["audit", "verify", "--db", join(dir, "modelvault.sqlite"), "--jwks", jwks]);
    expect(verify.code, verify.stderr).toBe(0);
    console.info(
      `${KILLS} kills under load: ${outcomes.length} requests, ${outcomes.filter((o) => o.status === "network").length} cut by a kill, ` +
        `${acked} reports and ${devices.reduce((n, d) => n + d.licenses.length, 0)} licenses acknowledged, all stored once`,
    );
  });
});
