/**
 * The runtime assembles a traceable model from the common shards and the variants its
 * license selects: exactly the copy its codeword names, nothing else changed for the app.
 */
import { cp, readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import * as ort from "onnxruntime-web";
import { beforeAll, describe, expect, it } from "vitest";
import { loadDigits } from "../../models/digits/dataset.js";
import type { LicenseClaims } from "../../src/core/license-token.js";
import { type Manifest, shardPath } from "../../src/core/manifest.js";
import type { RuntimeLoadOptions } from "../../src/core/worker-protocol.js";
import { unwrapSlotKeys } from "../../worker/slot-keys.js";
import { tempDir } from "../fixtures.js";
import { startStaticServer } from "../helpers/static-server.js";
import { DIGITS, grant, type Harness, registerDigits, startHarness } from "../server/harness.js";
import { assembleFor, manifestOf, traceSecretOf } from "../tracing/leak-tools.js";
import { codeOf, IDBFactory, licenseKeysOf, loadRuntime, optionsFor, type Served } from "./setup.js";

const SLOTS = 64;
let h: Harness;
let served: Served;
let manifest: Manifest;
let secret: Uint8Array;
let token: string;
let pkgDir: string;
let root: string;
const samples = loadDigits().heldOut.slice(0, 200);
const batch = new Float32Array(samples.length * 784);
for (const [i, d] of samples.entries()) batch.set(d.pixels, i * 784);
const feeds = () => ({
  pixels: { type: "float32" as const, data: batch.slice(), dims: [samples.length, 784] },
});

async function plainRun(model: Uint8Array): Promise<Float32Array> {
  ort.env.wasm.numThreads = 1;
  const session = await ort.InferenceSession.create(model);
  const out = await session.run({ pixels: new ort.Tensor("float32", batch.slice(), [samples.length, 784]) });
  await session.release();
  return out.probabilities?.data as Float32Array;
}

async function codewordOf(device: string): Promise<Uint8Array> {
  const row = await h.server.ctx.db.kysely
    .selectFrom("trace_codewords")
    .select("codeword")
    .where("device_id", "=", device)
    .executeTakeFirstOrThrow();
  return Uint8Array.from(row.codeword, (c) => (c === "1" ? 1 : 0));
}

beforeAll(async () => {
  h = await startHarness();
  const publisher = await h.principal("pub", ["publisher"]);
  const licensor = await h.principal("lic", ["licensor"]);
  const keyFile = join(h.dir, "trace-key.json");
  const reg = await registerDigits(h, publisher, 1, { trace: { slots: SLOTS, keyOut: keyFile } });
  manifest = manifestOf(reg.manifest);
  secret = await traceSecretOf(keyFile);
  root = await tempDir("mv-static-");
  pkgDir = join(root, "digits");
  await cp(reg.dir, pkgDir, { recursive: true });
  const files = await startStaticServer(root);
  served = {
    files,
    publisherKey: reg.publisher.publicJwk,
    url: (id) => `${files.url}/${id}/manifest.jws`,
    digest: { digits: reg.digest },
  };
  const c = await h.principal("client", ["client"]);
  await grant(h, licensor.token, c.id, { maxDevices: 10 });
  token = c.token;
}, 120_000);

const options = (over: Partial<RuntimeLoadOptions> = {}) => optionsFor(h, served, over);

describe("loading a traceable model", () => {
  it("runs exactly the copy the device's codeword selects, on two devices, within tolerance of the unmarked model", async () => {
    const original = new Uint8Array(await readFile(DIGITS));
    const unmarked = await plainRun(original);
    const outputs: Float32Array[] = [];
    for (const device of ["first", "second"]) {
      const roomy = async () => ({ usage: 0, quota: 2 ** 40 });
      const loaded = await loadRuntime(
        options({ licenseKeys: await licenseKeysOf(h) }),
        token,
        new IDBFactory(),
        roomy,
      );
      // The cache plans for the shards and one variant per slot (which one is known only later).
      const plan = loaded.progress.find((p) => p.status === "storage");
      const expected =
        manifest.files.reduce((n, f) => n + f.shards.reduce((m, x) => m + x.size + 16, 0), 0) +
        (manifest.trace?.slots ?? []).reduce((n, x) => n + x.size + 16, 0);
      expect(plan).toMatchObject({ needed: expected });
      const jkt = loaded.runtime.licenseState().deviceJkt;
      const bits = await codewordOf(jkt);
      const out = (await loaded.runtime.run(feeds())).probabilities?.data as Float32Array;
      // Bit-identical to plain onnxruntime on the copy built by the publisher for that codeword.
      expect(out).toEqual(await plainRun(await assembleFor(pkgDir, manifest, secret, bits, original)));
      let maxDiff = 0;
      for (let i = 0; i < out.length; i++)
        maxDiff = Math.max(maxDiff, Math.abs((out[i] as number) - (unmarked[i] as number)));
      console.log(
        `${device} device: max probability difference from the unmarked model ${maxDiff.toExponential(2)}`,
      );
      expect(maxDiff).toBeLessThan(0.05);
      outputs.push(out);
      // A warm start takes every shard and variant from the cache and runs the same copy.
      const warm = await loadRuntime(options(), token, loaded.idb, roomy);
      expect(warm.progress.find((p) => p.status === "storage")).toMatchObject({ needed: 0 });
      expect(
        warm.progress
          .filter((p) => p.status === "shard-downloaded")
          .every((p) => "fromCache" in p && p.fromCache),
      ).toBe(true);
      expect((await warm.runtime.run(feeds())).probabilities?.data).toEqual(out);
      await loaded.runtime.dispose();
      await warm.runtime.dispose();
    }
    expect(outputs[0]).not.toEqual(outputs[1]);
  }, 120_000);

  it("writes the variants over the slots only once every shard is in place, however late a shard arrives", async () => {
    // A server that answers the common shards 400 ms late: the variants all arrive before them.
    const late = new Set(manifest.files.flatMap((f) => f.shards.map((x) => `/digits/${shardPath(x)}`)));
    const proxy = createServer(async (req, res) => {
      const path = new URL(req.url ?? "/", "http://x").pathname;
      if (late.has(path)) await new Promise((r) => setTimeout(r, 400));
      const upstream = await fetch(`${served.files.url}${req.url}`);
      res.writeHead(upstream.status, { etag: upstream.headers.get("etag") ?? "" });
      res.end(Buffer.from(await upstream.arrayBuffer()));
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
    try {
      const url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/digits/manifest.jws`;
      const loaded = await loadRuntime(options({ manifestUrl: url }), token, new IDBFactory());
      const bits = await codewordOf(loaded.runtime.licenseState().deviceJkt);
      const original = new Uint8Array(await readFile(DIGITS));
      const out = (await loaded.runtime.run(feeds())).probabilities?.data as Float32Array;
      expect(out).toEqual(await plainRun(await assembleFor(pkgDir, manifest, secret, bits, original)));
      await loaded.runtime.dispose();
    } finally {
      await new Promise((r) => proxy.close(r));
    }
  }, 60_000);

  it("refuses a tampered variant like any tampered shard", async () => {
    const tampered = join(root, "digits-tampered");
    await cp(pkgDir, tampered, { recursive: true });
    for (const bit of [0, 1] as const) {
      const file = join(tampered, "shards", `${manifest.trace?.slots[3]?.variants[bit].sha256}.bin`);
      const bytes = await readFile(file);
      bytes[5] = (bytes[5] as number) ^ 1;
      await writeFile(file, bytes);
    }
    const code = await codeOf(
      loadRuntime(options({ manifestUrl: served.url("digits-tampered") }), token, new IDBFactory()),
    );
    expect(code).toBe("ERR_SHARD_DIGEST_MISMATCH");
  }, 60_000);

  it("refuses a license without slot keys, or with too few, for a traceable model", async () => {
    const agree = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, false, [
      "deriveKey",
    ]);
    const claims = { jti: "x", mdl: manifest.model } as unknown as LicenseClaims;
    expect(await codeOf(unwrapSlotKeys(agree.privateKey, claims, manifest))).toBe("ERR_LICENSE_INVALID");
    const short = {
      ...claims,
      trc: { alg: "x", slots: SLOTS - 1, bits: "", epk: { kty: "EC", crv: "P-256", x: "", y: "" }, keys: "" },
    };
    expect(await codeOf(unwrapSlotKeys(agree.privateKey, short as LicenseClaims, manifest))).toBe(
      "ERR_LICENSE_INVALID",
    );
  });
});
