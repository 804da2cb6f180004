import { beforeAll, describe, expect, it } from "vitest";
import { toBase64Url } from "../../src/core/bytes.js";
import { sealContentKey } from "../../src/core/content-key-jwe.js";
import type { EcJwk } from "../../src/core/jwk.js";
import { MANIFEST_FORMAT, type Manifest } from "../../src/core/manifest.js";
import { MAX_MANIFEST_BYTES, signManifest } from "../../src/core/manifest-jws.js";
import { generateKeyPairJwk } from "../../src/pack/keygen.js";
import { DIALECTS, freshPostgres } from "./databases.js";
import { type Harness, startHarness } from "./harness.js";

/** A signed manifest for a model of `shards` shards of 4 MiB (no shard needs to exist to register it). */
async function bigManifest(id: string, shards: number, key: EcJwk) {
  const shardSize = 4 * 1024 * 1024;
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    model: { id, version: 1 },
    cipher: "A256GCM",
    contentKeyId: toBase64Url(crypto.getRandomValues(new Uint8Array(16))),
    shardSize,
    size: shards * shardSize,
    files: [
      {
        role: "graph",
        location: "model.onnx",
        size: shards * shardSize,
        shards: Array.from({ length: shards }, (_, index) => ({
          index,
          size: shardSize,
          sha256: index.toString(16).padStart(64, "0"),
          iv: toBase64Url(crypto.getRandomValues(new Uint8Array(12))),
        })),
      },
    ],
    signature: { inputs: [], outputs: [{ name: "y", type: "float32", shape: [1] }] },
    createdAt: new Date().toISOString(),
  };
  return { manifest, jws: await signManifest(manifest, key) };
}

describe.each(DIALECTS)("registering large models (%s)", (dialect) => {
  let h: Harness;
  let publisher: { id: string; token: string };
  let keys: { privateJwk: EcJwk; publicJwk: EcJwk };
  let registrationKey: EcJwk;

  beforeAll(async () => {
    h = await startHarness(dialect === "postgres" ? { database: await freshPostgres() } : {});
    publisher = await h.principal("pub", ["publisher"]);
    keys = await generateKeyPairJwk("sig");
    await h.call("POST", "/v1/admin/publisher-keys", h.admin, {
      jwk: keys.publicJwk,
      principalId: publisher.id,
    });
    registrationKey = (await h.call("GET", "/.well-known/jwks.json")).body.keys.find(
      (k: { use: string }) => k.use === "enc",
    );
  });

  async function register(id: string, shards: number) {
    const { manifest, jws } = await bigManifest(id, shards, keys.privateJwk);
    const contentKey = await sealContentKey(
      {
        modelId: id,
        modelVersion: 1,
        contentKeyId: manifest.contentKeyId,
        key: crypto.getRandomValues(new Uint8Array(32)),
      },
      registrationKey,
    );
    return { jws, r: await h.call("POST", "/v1/models", publisher.token, { manifest: jws, contentKey }) };
  }

  it("registers a 3 GB model, whose manifest is far above the 64 KiB every other body is held to", async () => {
    const { jws, r } = await register("three-gb", 750);
    expect(jws.length).toBeGreaterThan(64 * 1024);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
  });

  it("registers the largest manifest the format allows (just under 1 MiB), and refuses a larger one with 413", async () => {
    const { jws, r } = await register("largest", 6000);
    expect(jws.length).toBeGreaterThan(0.95 * MAX_MANIFEST_BYTES);
    expect(jws.length).toBeLessThanOrEqual(MAX_MANIFEST_BYTES);
    expect(r.status, JSON.stringify(r.body).slice(0, 300)).toBe(201);
    const over = await h.call("POST", "/v1/models", publisher.token, {
      manifest: "x",
      contentKey: "y",
      pad: "z".repeat(MAX_MANIFEST_BYTES + 16 * 1024),
    });
    expect(over.status).toBe(413);
    expect(over.body.error.code).toBe("ERR_REQUEST_TOO_LARGE");
  });

  it("other routes keep the 64 KiB limit", async () => {
    const r = await h.call("POST", "/v1/admin/principals", h.admin, {
      name: "x",
      pad: "y".repeat(70 * 1024),
    });
    expect(r.status).toBe(413);
  });
});
