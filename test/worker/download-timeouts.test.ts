import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { openContentKey } from "../../src/core/content-key-jwe.js";
import type { Manifest } from "../../src/core/manifest.js";
import { importContentKey } from "../../src/core/shard-cipher.js";
import type { RetryOptions } from "../../src/core/worker-protocol.js";
import { loadManifest } from "../../worker/manifest-source.js";
import { loadShards } from "../../worker/shard-loader.js";
import { cleanup, makeKeys, packSynthetic, type TestKeys, tempDir } from "../fixtures.js";
import { type StaticServer, startStaticServer } from "../helpers/static-server.js";

/** Short timeouts so a stall costs the test a fraction of a second, not the 15 s default. */
const RETRY: RetryOptions = { attempts: 3, baseDelayMs: 10, idleTimeoutMs: 300, minBytesPerSecond: 1024 };

let keys: TestKeys;
let pkg: { outDir: string; modelPath: string; manifest: Manifest };
let cdn: StaticServer;
let base: string;

beforeAll(async () => {
  keys = await makeKeys();
  const dir = await tempDir("mv-slow-");
  pkg = await packSynthetic(dir, keys, { name: "slow", bytes: 300 * 1024 });
  cdn = await startStaticServer(dir);
  cleanup(() => cdn.close());
  base = `${cdn.url}/slow-v1/`;
});

const manifestOptions = (retry: RetryOptions) => ({
  publisherKeys: [keys.publisher.publicJwk],
  expect: undefined,
  storage: undefined,
  cache: false,
  allowOffline: false,
  retry,
  now: 0,
});

async function shards(retry: RetryOptions) {
  const jwe = await readFile(join(pkg.outDir, "content-key.jwe"), "utf8");
  const { modelId, modelVersion, contentKeyId } = {
    modelId: pkg.manifest.model.id,
    modelVersion: pkg.manifest.model.version,
    contentKeyId: pkg.manifest.contentKeyId,
  };
  const envelope = await openContentKey(jwe, keys.recipient.privateJwk, {
    modelId,
    modelVersion,
    contentKeyId,
  });
  return loadShards(pkg.manifest, importContentKey(envelope.key), undefined, {
    baseUrl: new URL(base),
    cache: undefined,
    concurrency: 2,
    retry,
    progress: () => {},
  });
}

const shardUrl = (i: number) => `/slow-v1/shards/${pkg.manifest.files[0]?.shards[i]?.sha256}.bin`;

describe("slow retrieval does not hang a load (TUF slow retrieval, checklist D7)", () => {
  it("a manifest that stalls is retried after the idle timeout and then fails with ERR_NETWORK", async () => {
    // One stalled answer: the next attempt, after the idle timeout, loads it.
    cdn.misbehaveNext("/slow-v1/manifest.jws", { stallAfter: 10 });
    const started = performance.now();
    const ok = await loadManifest(new URL(`${base}manifest.jws`), manifestOptions(RETRY));
    expect(ok.manifest.model.id).toBe("synthetic");
    expect(performance.now() - started).toBeGreaterThanOrEqual(250);
    // A server that only ever trickles (one byte every 50 ms) is given up on, in bounded time.
    cdn.misbehaveNext("/slow-v1/manifest.jws", { dripEveryMs: 50 }, 2);
    const again = performance.now();
    await expect(loadManifest(new URL(`${base}manifest.jws`), manifestOptions(RETRY))).rejects.toMatchObject({
      code: "ERR_NETWORK",
      message: expect.stringMatching(/manifest: slower than 1024 bytes\/s/),
    });
    expect(performance.now() - again).toBeLessThan(5000);
  });

  it("a shard that stalls mid-body is fetched again after the idle timeout and the load completes", async () => {
    cdn.log.length = 0;
    cdn.misbehaveNext(shardUrl(1), { stallAfter: 1000 });
    cdn.misbehaveNext(shardUrl(2), { dripEveryMs: 20 });
    const buffers = await shards(RETRY);
    const model = await readFile(pkg.modelPath);
    const location = pkg.manifest.files[0]?.location as string;
    expect(Buffer.from(buffers.get(location) as Uint8Array).equals(model)).toBe(true);
    // The stalled shard resumed after the 1000 bytes it had (Range), the trickling one was retried.
    const requests = (i: number) => cdn.log.filter((l) => l.path === shardUrl(i)).map((l) => l.range);
    expect(requests(1)).toEqual([undefined, "bytes=1000-"]);
    expect(requests(2)).toHaveLength(2);
    // Stalled on every attempt: ERR_NETWORK, not a hang.
    cdn.misbehaveNext(shardUrl(0), { stallAfter: 0 }, RETRY.attempts);
    await expect(shards(RETRY)).rejects.toMatchObject({ code: "ERR_NETWORK" });
  });

  it("a shard that streams past its signed length is cut there and refused", async () => {
    cdn.misbehaveNext(shardUrl(0), { endless: true });
    await expect(shards(RETRY)).rejects.toMatchObject({ code: "ERR_SHARD_SIZE_MISMATCH" });
  });
});
