import { readFile } from "node:fs/promises";
import { join } from "node:path";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { verifyPackage } from "../../src/pack/verify-package.js";
import { makeKeys, packSynthetic, type TestKeys, tempDir } from "../fixtures.js";

const SHARD = 64 * 1024;
let keys: TestKeys;
let dir: string;
let n = 0;

beforeAll(async () => {
  keys = await makeKeys();
  dir = await tempDir();
});

/** Packs, verifies with decryption into a fresh folder and compares every file byte for byte. */
async function roundTrip(bytes: number, external: boolean) {
  const name = `m${n++}`;
  const packed = await packSynthetic(dir, keys, { name, bytes, external, shardSize: SHARD });
  const extractTo = await tempDir();
  const report = await verifyPackage(packed.outDir, {
    publisherKeys: [keys.publisher.publicJwk],
    recipientKey: keys.recipient.privateJwk,
    extractTo,
  });
  expect(report.decrypted).toBe(true);
  for (const [i, file] of packed.manifest.files.entries()) {
    const original = await readFile(packed.files[i] as string);
    expect(file.size).toBe(original.length);
    expect(Buffer.compare(await readFile(join(extractTo, file.location)), original)).toBe(0);
  }
  return packed.manifest;
}

describe("pack → verify → decrypt round trip", () => {
  it.each([
    ["1 byte", 1],
    ["exactly one shard", SHARD],
    ["one shard + 1", SHARD + 1],
    ["many shards", 9 * SHARD + 123],
  ])("external-data file of %s", async (_, bytes) => {
    const m = await roundTrip(bytes, true);
    expect(m.files.map((f) => f.role)).toEqual(["graph", "external-data"]);
    expect(m.files[1]?.size).toBe(bytes);
    expect(m.files[1]?.shards.length).toBe(Math.ceil(bytes / SHARD));
  });

  it("inline model of many shards", async () => {
    const m = await roundTrip(5 * SHARD, false);
    expect(m.files).toHaveLength(1);
    expect(m.signature.inputs).toEqual([{ name: "x", type: "float32", shape: [] }]);
  });

  it("holds for arbitrary sizes (fast-check)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 4 * SHARD + 3 }), fc.boolean(), async (bytes, external) => {
        await roundTrip(bytes, external);
      }),
      { numRuns: 12, seed: 42 },
    );
  });
});
