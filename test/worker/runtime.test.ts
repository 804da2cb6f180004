import "fake-indexeddb/auto"; // idb checks instanceof IDBRequest & co. against the globals
import { cp, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { IDBFactory } from "fake-indexeddb";
import * as ort from "onnxruntime-web";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadDigits } from "../../models/digits/dataset.js";
import type { LoadProgress } from "../../src/core/progress.js";
import type { RuntimeEvent, RuntimeLoadOptions } from "../../src/core/worker-protocol.js";
import { ModelRuntime } from "../../worker/runtime.js";
import { tempDir } from "../fixtures.js";
import { type StaticServer, startStaticServer } from "../helpers/static-server.js";
import { DIGITS, grant, type Harness, registerDigits, startHarness } from "../server/harness.js";

let h: Harness;
let files: StaticServer;
let client: { id: string; token: string };
let licensor: { id: string; token: string };
let publisherKey: unknown;
let root: string;
const runtimes: ModelRuntime[] = [];

beforeAll(async () => {
  h = await startHarness();
  const publisher = await h.principal("pub", ["publisher"]);
  licensor = await h.principal("lic", ["licensor"]);
  client = await h.principal("client", ["client"]);
  const reg = await registerDigits(h, publisher);
  publisherKey = reg.publisher.publicJwk;
  await grant(h, licensor.token, client.id, { maxDevices: 50, licenseAllowance: 5000, quota: 100_000 });
  root = await tempDir("mv-static-");
  await cp(reg.dir, join(root, "digits"), { recursive: true });
  files = await startStaticServer(root);
});
afterAll(async () => {
  for (const r of runtimes) await r.dispose();
  await files?.close();
});

function options(over: Partial<RuntimeLoadOptions> = {}): RuntimeLoadOptions {
  return {
    manifestUrl: `${files.url}/digits/manifest.jws`,
    licenseServer: h.url,
    publisherKeys: [publisherKey as never],
    backend: "wasm",
    cache: true,
    allowOffline: true,
    retry: { attempts: 3, baseDelayMs: 10 },
    concurrency: 4,
    wallClock: h.clock.now(),
    ...over,
  };
}

async function load(
  over: Partial<RuntimeLoadOptions> = {},
  idb = new IDBFactory(),
  credential = client.token,
) {
  const progress: LoadProgress[] = [];
  const events: RuntimeEvent[] = [];
  const runtime = new ModelRuntime(idb);
  runtimes.push(runtime);
  const result = await runtime.load(options(over), {
    progress: (p) => progress.push(p),
    event: (e) => events.push(e),
    credential: async () => credential,
  });
  await runtime.whenCached(); // the cache fills after the load: tests that reload want it full
  return { runtime, result, progress, events, idb };
}
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => "loaded",
    (e: { code?: string; message?: string }) => e.code ?? e.message,
  );

describe("worker runtime (Node, real server, fake-indexeddb)", () => {
  it("loads the digits model and predicts held-out digits like plain onnxruntime", async () => {
    const { runtime, result, progress } = await load();
    expect(result.inputs[0]).toEqual({ name: "pixels", type: "float32", shape: ["batch", 784] });
    expect(progress.map((p) => p.status)).toEqual(
      expect.arrayContaining([
        "manifest-verified",
        "license-granted",
        "shard-downloaded",
        "shard-verified",
        "shard-decrypted",
        "session-created",
        "ready",
      ]),
    );
    expect(progress.at(-1)?.status).toBe("ready");
    const { heldOut } = loadDigits();
    const sample = heldOut.slice(0, 200);
    const batch = new Float32Array(sample.length * 784);
    for (const [i, d] of sample.entries()) batch.set(d.pixels, i * 784);
    const plain = await ort.InferenceSession.create(await readFile(DIGITS));
    const expected = (
      await plain.run({ pixels: new ort.Tensor("float32", batch.slice(), [sample.length, 784]) })
    ).probabilities?.data as Float32Array;
    const out = await runtime.run({ pixels: { type: "float32", data: batch, dims: [sample.length, 784] } });
    const probs = out.probabilities?.data as Float32Array;
    expect(Array.from(probs)).toEqual(Array.from(expected));
    let correct = 0;
    for (const [i, d] of sample.entries()) {
      const row = Array.from(probs.subarray(i * 10, i * 10 + 10));
      if (row.indexOf(Math.max(...row)) === d.label) correct++;
    }
    expect(correct / sample.length).toBeGreaterThanOrEqual(0.95);
  });

  it("validates inputs against the manifest signature", async () => {
    const { runtime } = await load();
    const ok = new Float32Array(784);
    const cases: [string, Record<string, { type: string; data: ArrayBufferView; dims: number[] }>][] = [
      [
        "an unknown input",
        {
          pixels: { type: "float32", data: ok, dims: [1, 784] },
          extra: { type: "float32", data: ok, dims: [1, 784] },
        },
      ],
      ["a missing input", {}],
      ["the wrong element type", { pixels: { type: "int32", data: new Int32Array(784), dims: [1, 784] } }],
      ["the wrong rank", { pixels: { type: "float32", data: ok, dims: [784] } }],
      ["a wrong fixed dim", { pixels: { type: "float32", data: new Float32Array(783), dims: [1, 783] } }],
      ["data length not matching dims", { pixels: { type: "float32", data: ok, dims: [2, 784] } }],
      ["NaN", { pixels: { type: "float32", data: new Float32Array(784).fill(Number.NaN), dims: [1, 784] } }],
      [
        "Infinity",
        {
          pixels: {
            type: "float32",
            data: new Float32Array(784).fill(Number.POSITIVE_INFINITY),
            dims: [1, 784],
          },
        },
      ],
    ];
    for (const [name, feeds] of cases)
      expect(await codeOf(runtime.run(feeds)), name).toBe("ERR_INPUT_INVALID");
  });

  it("a reload comes from the cache (no shard download); a corrupt cached shard is fetched again", async () => {
    const first = await load();
    const before = files.log.length;
    const second = await load({}, first.idb);
    const shardRequests = files.log.slice(before).filter((l) => l.path.includes("/shards/"));
    expect(shardRequests).toEqual([]);
    expect(
      second.progress
        .filter((p) => p.status === "shard-downloaded")
        .every((p) => p.status === "shard-downloaded" && p.fromCache),
    ).toBe(true);
    // Corrupt one cached shard in IndexedDB.
    const { openStorage } = await import("../../worker/storage.js");
    const storage = await openStorage(first.idb);
    const keys = await storage?.db.getAllKeys("shards");
    const row = await storage?.db.get("shards", keys?.[0] as string);
    const bytes = new Uint8Array(row?.bytes as ArrayBuffer);
    bytes[0] = (bytes[0] as number) ^ 1;
    await storage?.db.put("shards", { sha256: row?.sha256 as string, bytes: bytes.buffer });
    storage?.close();
    const mark = files.log.length;
    const third = await load({}, first.idb);
    expect(third.progress.some((p) => p.status === "warning" && p.code === "ERR_SHARD_DECRYPT_FAILED")).toBe(
      true,
    );
    expect(files.log.slice(mark).filter((l) => l.path.includes("/shards/")).length).toBe(1);
  });

  it("resumes a shard download cut mid-body with Range + If-Range", async () => {
    const shard = (await readdir(join(root, "digits/shards")))[0] as string;
    files.cutNext(`/digits/shards/${shard}`, 1000);
    const mark = files.log.length;
    await load({ cache: false });
    const requests = files.log.slice(mark).filter((l) => l.path.endsWith(shard));
    expect(requests.length).toBe(2);
    expect(requests[1]?.range).toBe("bytes=1000-");
  });

  it("refuses a tampered shard and a tampered manifest with their codes, and plain http off localhost", async () => {
    const bad = await tempDir("mv-bad-");
    await cp(join(root, "digits"), join(bad, "digits"), { recursive: true });
    const served = await startStaticServer(bad);
    try {
      const shard = join(bad, "digits/shards", (await readdir(join(bad, "digits/shards")))[0] as string);
      const bytes = await readFile(shard);
      bytes[100] = (bytes[100] as number) ^ 1;
      await writeFile(shard, bytes);
      expect(await codeOf(load({ manifestUrl: `${served.url}/digits/manifest.jws`, cache: false }))).toBe(
        "ERR_SHARD_DIGEST_MISMATCH",
      );
      const jws = await readFile(join(bad, "digits/manifest.jws"), "utf8");
      await writeFile(
        join(bad, "digits/manifest.jws"),
        `${jws.slice(0, 60)}${jws[60] === "A" ? "B" : "A"}${jws.slice(61)}`,
      );
      expect(await codeOf(load({ manifestUrl: `${served.url}/digits/manifest.jws`, cache: false }))).toMatch(
        /^ERR_MANIFEST_(SIGNATURE_INVALID|MALFORMED)$/,
      );
    } finally {
      await served.close();
    }
    expect(await codeOf(load({ licenseServer: "http://licenses.example.com" }))).toBe("ERR_INSECURE_URL");
    expect(await codeOf(load({ manifestUrl: "http://cdn.example.com/m.jws" }))).toBe("ERR_INSECURE_URL");
  });

  it("after revocation, the next renewal drops the session and run() fails with the code", async () => {
    const { runtime, events } = await load();
    const x = { pixels: { type: "float32", data: new Float32Array(784), dims: [1, 784] } };
    await runtime.run(x);
    const jkt = runtime.licenseState().deviceJkt;
    expect((await h.call("POST", `/v1/devices/${jkt}/revoke`, licensor.token)).status).toBe(200);
    await runtime.run({ pixels: { type: "float32", data: new Float32Array(784), dims: [1, 784] } }); // still valid until renewal
    expect(await codeOf(runtime.renew())).toBe("ERR_DEVICE_REVOKED");
    expect(
      await codeOf(runtime.run({ pixels: { type: "float32", data: new Float32Array(784), dims: [1, 784] } })),
    ).toBe("ERR_DEVICE_REVOKED");
    expect(events.some((e) => e.type === "license-revoked")).toBe(true);
  });

  it("counts runs into signed usage reports the server stores exactly once", async () => {
    const { runtime } = await load();
    for (let i = 0; i < 7; i++)
      await runtime.run({ pixels: { type: "float32", data: new Float32Array(784), dims: [1, 784] } });
    const first = await runtime.flushUsage();
    expect(first).toEqual({ sent: 1, pending: 0 });
    for (let i = 0; i < 3; i++)
      await runtime.run({ pixels: { type: "float32", data: new Float32Array(784), dims: [1, 784] } });
    await runtime.flushUsage();
    const jkt = runtime.licenseState().deviceJkt;
    const rows = await h.server.ctx.db.kysely
      .selectFrom("usage_reports")
      .selectAll()
      .where("device_id", "=", jkt)
      .orderBy("seq")
      .execute();
    expect(rows.map((r) => r.seq)).toEqual(rows.map((_, i) => i + 1));
    expect(rows.reduce((n, r) => n + r.count, 0)).toBe(10);
  });

  it("stops at the license's allowance", async () => {
    const small = await h.principal("small", ["client"]);
    await grant(h, licensor.token, small.id, { licenseAllowance: 2, quota: 2 });
    const { runtime } = await load({}, new IDBFactory(), small.token);
    const x = () => ({ pixels: { type: "float32", data: new Float32Array(784), dims: [1, 784] } });
    await runtime.run(x());
    await runtime.run(x());
    expect(await codeOf(runtime.run(x()))).toBe("ERR_QUOTA_EXHAUSTED");
  });

  it("refuses a clock set back below the highest time seen", async () => {
    const { idb } = await load();
    expect(await codeOf(load({ wallClock: h.clock.now() - 3 * 3600 }, idb))).toBe("ERR_CLOCK_ROLLBACK");
  });
});
