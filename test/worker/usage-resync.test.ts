import { beforeAll, describe, expect, it } from "vitest";
import { openStorage, type UsageState } from "../../worker/storage.js";
import { grant, type Harness, startHarness } from "../server/harness.js";
import { IDBFactory, loadRuntime, optionsFor, pixels, type Served, serveModels } from "./setup.js";

let h: Harness;
let served: Served;
let client: { id: string; token: string };

beforeAll(async () => {
  h = await startHarness();
  served = await serveModels(h);
  const licensor = await h.principal("lic", ["licensor"]);
  client = await h.principal("client", ["client"]);
  await grant(h, licensor.token, client.id, { maxDevices: 20, licenseAllowance: 1000, quota: 100_000 });
});

/** The device's chain state as the runtime keeps it in IndexedDB, to copy and put back. */
async function usageState(idb: IDBFactory, jkt: string): Promise<UsageState> {
  const storage = await openStorage(idb);
  try {
    return (await storage?.db.get("usage", jkt)) as UsageState;
  } finally {
    storage?.close();
  }
}
async function restore(idb: IDBFactory, state: UsageState): Promise<number> {
  const storage = await openStorage(idb);
  try {
    await storage?.db.put("usage", state);
    return (await storage?.db.getAll("outbox"))?.length ?? -1;
  } finally {
    storage?.close();
  }
}
async function outbox(idb: IDBFactory): Promise<number> {
  const storage = await openStorage(idb);
  try {
    return (await storage?.db.getAll("outbox"))?.length ?? -1;
  } finally {
    storage?.close();
  }
}

/** What the server holds for a device: reports, anomalies, evidence. */
async function serverView(jkt: string) {
  const db = h.server.ctx.db.kysely;
  const reports = await db
    .selectFrom("usage_reports")
    .select(["seq", "count"])
    .where("device_id", "=", jkt)
    .orderBy("seq")
    .execute();
  const anomalies = await db
    .selectFrom("anomalies")
    .select(["kind", "severity"])
    .where("device_id", "=", jkt)
    .orderBy("id")
    .execute();
  const evidence = await db
    .selectFrom("usage_evidence")
    .select(["seq", "kind", "token"])
    .where("device_id", "=", jkt)
    .execute();
  return {
    seqs: reports.map((r) => r.seq),
    total: reports.reduce((n, r) => n + r.count, 0),
    anomalies,
    evidence,
  };
}

/** Runs the model `n` times and sends the reports. */
async function use(runtime: Awaited<ReturnType<typeof loadRuntime>>["runtime"], n: number) {
  for (let i = 0; i < n; i++) await runtime.run(pixels());
  return runtime.flushUsage();
}

describe("usage resync from the server's head (G5, I5)", () => {
  it("a lost last write: the refused report's runs are re-sent after the server's head, a warning only, nothing left in the outbox", async () => {
    const idb = new IDBFactory();
    const first = await loadRuntime(optionsFor(h, served), client.token, idb);
    const jkt = first.runtime.licenseState().deviceJkt;
    await use(first.runtime, 1);
    const beforeLastWrite = await usageState(idb, jkt);
    expect(beforeLastWrite.seq).toBe(1);
    await use(first.runtime, 2); // seq 2, acknowledged by the server…
    await first.runtime.dispose();
    // …and lost by the device (a crash before its write reached the disk).
    expect(await restore(idb, beforeLastWrite)).toBe(0);

    const second = await loadRuntime(optionsFor(h, served), client.token, idb);
    expect(await use(second.runtime, 3)).toEqual({ sent: 1, pending: 0 });
    expect(await outbox(idb)).toBe(0);
    const view = await serverView(jkt);
    expect(view.seqs).toEqual([1, 2, 3]);
    expect(view.total).toBe(6); // every run counted once: 1, 2, then the 3 of the refused report
    expect(view.anomalies).toEqual([{ kind: "usage_resync", severity: "warning" }]);
    // The device's conflicting signed report is kept as evidence.
    expect(view.evidence).toEqual([{ seq: 2, kind: "usage_resync", token: expect.stringMatching(/^ey/) }]);
    expect((await usageState(idb, jkt)).seq).toBe(3);
  });

  it("a restored older profile: flagged as a rollback (an alert), the client continues from the server's head", async () => {
    const idb = new IDBFactory();
    const first = await loadRuntime(optionsFor(h, served), client.token, idb);
    const jkt = first.runtime.licenseState().deviceJkt;
    await use(first.runtime, 1);
    const snapshot = await usageState(idb, jkt);
    for (const n of [2, 3, 4]) await use(first.runtime, n); // seq 2, 3, 4
    await first.runtime.dispose();
    expect(await restore(idb, snapshot)).toBe(0); // the profile as it was days ago

    const second = await loadRuntime(optionsFor(h, served), client.token, idb);
    expect(await use(second.runtime, 5)).toEqual({ sent: 1, pending: 0 });
    expect(await outbox(idb)).toBe(0);
    const view = await serverView(jkt);
    expect(view.seqs).toEqual([1, 2, 3, 4, 5]);
    expect(view.total).toBe(1 + 2 + 3 + 4 + 5);
    expect(view.anomalies).toEqual([{ kind: "usage_rollback", severity: "alert" }]);
    expect(view.evidence.map((e) => [e.seq, e.kind])).toEqual([[2, "usage_rollback"]]);
  });
});
