import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { writeSyntheticModel } from "../../models/synthetic.js";
import { fromBase64Url, toHex } from "../../src/core/bytes.js";
import type { ShardContext } from "../../src/core/shard-aad.js";
import { IV_BYTES } from "../../src/core/shard-cipher.js";
import { packModel } from "../../src/pack/pack-model.js";
import { sealShardNode } from "../../src/pack/seal-shard-node.js";
import { verifyPackage } from "../../src/pack/verify-package.js";
import { makeKeys, tempDir } from "../fixtures.js";

const SHARD = 64 * 1024;

/**
 * NIST SP 800-38D §8: a (key, IV) pair is never used twice. The packer seals with node:crypto in
 * worker threads (the only sealer there is), so these tests pack for real: several threads,
 * several files, every IV collected from the signed manifest.
 */
describe("IVs of the sealer that ships (SP 800-38D §8)", () => {
  it("a pack over four threads and four files never repeats an IV, and every listed IV is the one that decrypts", async () => {
    const dir = await tempDir("mv-iv-");
    const keys = await makeKeys();
    const modelPath = join(dir, "big.onnx");
    // 40 MiB of weights in three external-data files: 640 shards of 64 KiB, sealed by 4 threads.
    await writeSyntheticModel(modelPath, { bytes: 40 * 1024 * 1024, external: true, externalFiles: 3 });
    const packed = await packModel({
      modelPath,
      id: "big",
      version: 1,
      signingKey: keys.publisher.privateJwk,
      recipient: keys.recipient.publicJwk,
      outDir: join(dir, "out"),
      shardSize: SHARD,
      threads: 4,
    });
    const ivs = packed.manifest.files.flatMap((f) => f.shards.map((s) => s.iv));
    expect(packed.manifest.files).toHaveLength(4);
    expect(ivs.length).toBeGreaterThan(640);
    expect(ivs.every((iv) => fromBase64Url(iv).length === IV_BYTES)).toBe(true);
    expect(new Set(ivs).size).toBe(ivs.length);
    // The IV in the manifest is the one each shard was sealed with: every shard decrypts.
    const report = await verifyPackage(packed.outDir, {
      publisherKeys: [keys.publisher.publicJwk],
      recipientKey: keys.recipient.privateJwk,
    });
    expect(report.decrypted).toBe(true);
  }, 120_000);

  it("50,000 seals under one key on one thread never repeat an IV (no counter that restarts per thread or file)", () => {
    const raw = crypto.getRandomValues(new Uint8Array(32));
    const ctx: ShardContext = {
      modelId: "m",
      modelVersion: 1,
      location: "m.onnx",
      fileSize: 1,
      shardIndex: 0,
      shardCount: 1,
      plaintextSize: 1,
    };
    const seen = new Set<string>();
    const one = new Uint8Array(1);
    for (let i = 0; i < 50_000; i++) seen.add(toHex(sealShardNode(raw, one, ctx).iv));
    expect(seen.size).toBe(50_000);
  });
});
