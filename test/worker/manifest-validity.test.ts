import "fake-indexeddb/auto"; // idb checks instanceof IDBRequest & co. against the globals
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { IDBFactory } from "fake-indexeddb";
import { beforeAll, describe, expect, it } from "vitest";
import type { EcJwk } from "../../src/core/jwk.js";
import type { Manifest } from "../../src/core/manifest.js";
import { signManifest } from "../../src/core/manifest-jws.js";
import { generateKeyPairJwk } from "../../src/pack/keygen.js";
import { loadManifest } from "../../worker/manifest-source.js";
import { openStorage, type Storage } from "../../worker/storage.js";
import { cleanup, makeKeys, packSynthetic, tempDir } from "../fixtures.js";
import { type StaticServer, startStaticServer } from "../helpers/static-server.js";

type KeyPair = { privateJwk: EcJwk; publicJwk: EcJwk };

let base: Manifest;
let dir: string;
let cdn: StaticServer;

beforeAll(async () => {
  dir = await tempDir("mv-validity-");
  base = (await packSynthetic(dir, await makeKeys(), { name: "m", bytes: 70 * 1024 })).manifest;
  cdn = await startStaticServer(dir);
  cleanup(() => cdn.close());
});

/** Signs `base` as `version` (and `expires`) with `key`, serves it, and returns its URL. */
async function serve(key: KeyPair, version: number, expires?: number): Promise<URL> {
  const name = `${key.publicJwk.kid}-${version}-${expires ?? "none"}.jws`;
  const manifest = { ...base, model: { ...base.model, version }, ...(expires ? { expires } : {}) };
  await writeFile(join(dir, name), await signManifest(manifest, key.privateJwk));
  return new URL(`${cdn.url}/${name}`);
}

const load = (url: URL, pins: KeyPair[], storage: Storage | undefined, now: number, allowOffline = false) =>
  loadManifest(url, {
    publisherKeys: pins.map((k) => k.publicJwk),
    expect: undefined,
    storage,
    cache: true,
    allowOffline,
    retry: { attempts: 1, baseDelayMs: 1 },
    now,
  });

describe("manifest validity in the worker", () => {
  it("a manifest past its signed expires is refused on the trusted clock, also from the cache offline (D4)", async () => {
    const key = await generateKeyPairJwk("sig");
    const storage = await openStorage(new IDBFactory());
    const expires = 2_000_000_000;
    const url = await serve(key, 1, expires);
    await expect(load(url, [key], storage, expires - 1)).resolves.toMatchObject({ fromCache: false });
    await expect(load(url, [key], storage, expires)).rejects.toMatchObject({
      code: "ERR_MANIFEST_EXPIRED",
      data: { expires },
    });
    // Offline, the cached copy is no way around it.
    const offline = new URL(url.pathname, "http://127.0.0.1:9"); // nothing listens on port 9
    await storage?.db.put("manifests", {
      url: offline.toString(),
      jws: (await (await fetch(url)).text()).trim(),
      storedAt: 0,
    });
    await expect(load(offline, [key], storage, expires - 1, true)).resolves.toMatchObject({
      fromCache: true,
    });
    await expect(load(offline, [key], storage, expires + 1, true)).rejects.toMatchObject({
      code: "ERR_MANIFEST_EXPIRED",
    });
  });

  it("rollback marks are kept per pinned publisher key: dropping a compromised key lets its successor start over (D6)", async () => {
    const stolen = await generateKeyPairJwk("sig");
    const successor = await generateKeyPairJwk("sig");
    const storage = await openStorage(new IDBFactory());
    const now = 1_000;
    // The thief's key signs a huge version, and a device loads it while the key is still pinned.
    await expect(load(await serve(stolen, 2 ** 31 - 1), [stolen], storage, now)).resolves.toBeTruthy();
    // While the app still pins the stolen key, its mark holds every other key's versions down.
    const v2 = await serve(successor, 2);
    await expect(load(v2, [stolen, successor], storage, now)).rejects.toMatchObject({
      code: "ERR_MANIFEST_ROLLBACK",
    });
    // The app's update drops the stolen key and pins its successor: v2 loads.
    await expect(load(v2, [successor], storage, now)).resolves.toMatchObject({
      manifest: { model: { version: 2 } },
    });
    // And the successor's own floor holds: its v1 is a rollback.
    await expect(load(await serve(successor, 1), [successor], storage, now)).rejects.toMatchObject({
      code: "ERR_MANIFEST_ROLLBACK",
    });
  });
});
