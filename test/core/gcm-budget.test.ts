import { describe, expect, it } from "vitest";
import { MANIFEST_FORMAT, MIN_SHARD_SIZE, parseManifest } from "../../src/core/manifest.js";
import { MAX_MANIFEST_BYTES } from "../../src/core/manifest-jws.js";

/** A well-formed manifest with `files` files of `shards` minimum-size shards each. */
function manifest(files: number, shards: number) {
  const shard = (index: number) => ({
    index,
    size: MIN_SHARD_SIZE,
    sha256: "0".repeat(64),
    iv: "A".repeat(16),
  });
  const list = Array.from({ length: files }, (_, f) => ({
    role: f === 0 ? "graph" : "external-data",
    location: f === 0 ? "model.onnx" : `data-${f}.bin`,
    size: shards * MIN_SHARD_SIZE,
    shards: Array.from({ length: shards }, (_, i) => shard(i)),
  }));
  return {
    format: MANIFEST_FORMAT,
    model: { id: "m", version: 1 },
    cipher: "A256GCM",
    contentKeyId: "A".repeat(22),
    shardSize: MIN_SHARD_SIZE,
    size: files * shards * MIN_SHARD_SIZE,
    files: list,
    signature: { inputs: [], outputs: [{ name: "y", type: "float32", shape: [1] }] },
    createdAt: new Date(0).toISOString(),
  };
}

/**
 * SP 800-38D §8.3: with random 96-bit IVs, at most 2^32 invocations per key. A content key seals
 * exactly the shards of one model version, so the format's own bounds are the budget.
 */
describe("GCM invocations per content key (SP 800-38D §8.3)", () => {
  it("a manifest cannot list more shards than keep one key far below 2^32 GCM invocations", () => {
    expect(() => parseManifest(manifest(1, 65_536))).not.toThrow();
    expect(() => parseManifest(manifest(1, 65_537))).toThrow(
      expect.objectContaining({ code: "ERR_MANIFEST_MALFORMED" }),
    );
    expect(() => parseManifest(manifest(1_025, 1))).toThrow(
      expect.objectContaining({ code: "ERR_MANIFEST_MALFORMED" }),
    );
    // The schema's ceiling (1,024 files × 65,536 shards) is 2^26 seals; the 1 MiB manifest holds
    // far fewer entries still (each is over 100 bytes). Both stay 64 times below 2^32.
    expect(1024 * 65_536).toBeLessThanOrEqual(2 ** 26);
    const entryBytes = JSON.stringify(manifest(1, 1).files[0]?.shards[0]).length;
    expect(Math.ceil(MAX_MANIFEST_BYTES / entryBytes)).toBeLessThan(2 ** 26);
  });
});
