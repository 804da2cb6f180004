import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import * as ort from "onnxruntime-web";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { jwkThumbprint } from "../../src/core/jwk.js";
import { openStorage } from "../../worker/storage.js";
import { grant, type Harness, startHarness } from "../server/harness.js";
import {
  codeOf,
  IDBFactory,
  licenseKeysOf,
  loadRuntime,
  optionsFor,
  pixels,
  type Served,
  serveModels,
} from "./setup.js";

let h: Harness;
let served: Served;
let licensor: { id: string; token: string };

beforeAll(async () => {
  h = await startHarness();
  licensor = await h.principal("lic", ["licensor"]);
  served = await serveModels(h, [
    { id: "digits-other" },
    { id: "digits-policy", outputPolicy: { topK: 1, decimals: 0 } },
  ]);
});

async function client(modelIds = ["digits"], over: Record<string, unknown> = {}) {
  const c = await h.principal(`c${Math.random()}`, ["client"]);
  for (const modelId of modelIds) await grant(h, licensor.token, c.id, { maxDevices: 10, modelId, ...over });
  return c;
}

describe("offline licenses verify only under the license keys the app pins", () => {
  /** A server of its own, so it can be taken away: the runtime must then start offline. */
  async function offlineSetup() {
    const server = await startHarness();
    const lic = await server.principal("lic", ["licensor"]);
    const models = await serveModels(server);
    const c = await server.principal("c", ["client"]);
    await grant(server, lic.token, c.id, { licenseTtlSeconds: 600, offlineSeconds: 3600 });
    return { server, models, token: c.token, licenseKeys: await licenseKeysOf(server) };
  }

  it("a license re-signed by a planted key (10-year offline window, huge allowance) does not load offline", async () => {
    const { server, models, token, licenseKeys } = await offlineSetup();
    const online = await loadRuntime(optionsFor(server, models, { licenseKeys }), token);
    await online.runtime.dispose();
    await server.server.close();
    // Control: the genuine cached license starts offline under the pinned keys.
    const genuine = await loadRuntime(optionsFor(server, models, { licenseKeys }), token, online.idb);
    expect(genuine.runtime.licenseState().offline).toBe(true);
    await genuine.runtime.dispose();
    // The attack: re-sign the cached license with the attacker's key, and plant that key beside it.
    const storage = await openStorage(online.idb);
    if (!storage) throw new Error("no storage");
    const [cacheKey] = (await storage.db.getAllKeys("licenses")) as string[];
    const cached = await storage.db.get("licenses", cacheKey as string);
    const claims = JSON.parse(
      Buffer.from(String(cached?.token).split(".")[1] as string, "base64url").toString(),
    );
    const attacker = await generateKeyPair("ES256", { extractable: true });
    const attackerJwk = await exportJWK(attacker.publicKey);
    const kid = await jwkThumbprint(attackerJwk as never);
    const forged = await new SignJWT({
      ...claims,
      offline_until: claims.iat + 10 * 365 * 86400,
      quota: { ...claims.quota, allowance: 1e9 },
    })
      .setProtectedHeader({ alg: "ES256", typ: "license+jwt", kid })
      .sign(attacker.privateKey);
    await storage.db.put("licenses", {
      key: cacheKey as string,
      token: forged,
      jwks: { keys: [{ ...attackerJwk, kid, alg: "ES256", use: "sig" }] },
      receivedAt: claims.iat,
    } as never);
    storage.close();
    const code = await codeOf(loadRuntime(optionsFor(server, models, { licenseKeys }), token, online.idb));
    expect(code).toBe("ERR_LICENSE_INVALID");
  });

  it("without pinned license keys there is no offline start; pinned keys that are not the server's refuse online licenses", async () => {
    const { server, models, token } = await offlineSetup();
    const online = await loadRuntime(optionsFor(server, models), token);
    await online.runtime.dispose();
    const stranger = await generateKeyPair("ES256", { extractable: true });
    const wrongPin = [{ ...(await exportJWK(stranger.publicKey)), kty: "EC", crv: "P-256" }] as never;
    expect(await codeOf(loadRuntime(optionsFor(server, models, { licenseKeys: wrongPin }), token))).toBe(
      "ERR_LICENSE_INVALID",
    );
    await server.server.close();
    expect(await codeOf(loadRuntime(optionsFor(server, models), token, online.idb))).toBe("ERR_NETWORK");
  });
});

describe("the expected model", () => {
  it("a mirror serving another model the same publisher signed is refused with ERR_MODEL_MISMATCH", async () => {
    const c = await client(["digits", "digits-other"]);
    const expect_ = { modelId: "digits" };
    const swapped = await codeOf(
      loadRuntime(
        optionsFor(h, served, { manifestUrl: served.url("digits-other"), expect: expect_ }),
        c.token,
      ),
    );
    expect(swapped).toBe("ERR_MODEL_MISMATCH");
    expect(
      await codeOf(
        loadRuntime(optionsFor(h, served, { expect: { modelId: "digits", minVersion: 2 } }), c.token),
      ),
    ).toBe("ERR_MODEL_MISMATCH");
    expect(await codeOf(loadRuntime(optionsFor(h, served, { expect: expect_ }), c.token))).toBe("ok");
  });
});

describe("the manifest is bounded while it streams", () => {
  it("an endless (or hugely declared) manifest is refused at 1 MiB without reading the rest", async () => {
    let sent = 0;
    let closed = false;
    const endless: Server = createServer((req, res) => {
      if (req.url?.startsWith("/declared")) {
        res.writeHead(200, { "content-length": String(300 * 1024 * 1024) });
        res.write("x".repeat(1024));
        return;
      }
      res.writeHead(200, { "content-type": "application/jose" });
      const chunk = Buffer.alloc(64 * 1024, 0x41);
      const pump = () => {
        while (!closed && res.write(chunk)) sent += chunk.length;
        if (!closed) res.once("drain", pump);
      };
      res.on("close", () => {
        closed = true;
      });
      pump();
    });
    await new Promise<void>((r) => endless.listen(0, "127.0.0.1", r));
    afterAll(() => {
      endless.closeAllConnections();
      return new Promise<void>((r) => endless.close(() => r()));
    });
    const base = `http://127.0.0.1:${(endless.address() as AddressInfo).port}`;
    const c = await client();
    const started = Date.now();
    const code = await codeOf(
      loadRuntime(optionsFor(h, served, { manifestUrl: `${base}/endless/manifest.jws` }), c.token),
    );
    expect(code).toBe("ERR_MANIFEST_TOO_LARGE");
    expect(Date.now() - started).toBeLessThan(10_000);
    await vi.waitFor(() => expect(closed).toBe(true));
    expect(sent).toBeLessThan(8 * 1024 * 1024);
    expect(
      await codeOf(loadRuntime(optionsFor(h, served, { manifestUrl: `${base}/declared/m.jws` }), c.token)),
    ).toBe("ERR_MANIFEST_TOO_LARGE");
  });
});

describe("plaintext is zeroed", () => {
  it("once the session holds the model, the decrypted bytes the runtime held are all zero", async () => {
    const c = await client();
    const graphs: Uint8Array[] = [];
    const decrypted: ArrayBuffer[] = [];
    const create = ort.InferenceSession.create.bind(ort.InferenceSession);
    const spyCreate = vi.spyOn(ort.InferenceSession, "create").mockImplementation(((m: unknown, o: never) => {
      if (m instanceof Uint8Array && m.length > 1000) graphs.push(m);
      return create(m as Uint8Array, o);
    }) as never);
    const decrypt = crypto.subtle.decrypt.bind(crypto.subtle);
    const spyDecrypt = vi.spyOn(crypto.subtle, "decrypt").mockImplementation(async (...args) => {
      const out = await decrypt(...args);
      decrypted.push(out);
      return out;
    });
    try {
      const { runtime } = await loadRuntime(optionsFor(h, served, { cache: false }), c.token);
      expect(await codeOf(runtime.run(pixels()))).toBe("ok");
    } finally {
      spyCreate.mockRestore();
      spyDecrypt.mockRestore();
    }
    expect(graphs.length).toBe(1);
    expect((graphs[0] as Uint8Array).every((b) => b === 0)).toBe(true);
    expect(decrypted.length).toBeGreaterThan(1);
    for (const d of decrypted) expect(new Uint8Array(d).every((b) => b === 0)).toBe(true);
  });
});

describe("the signed output policy", () => {
  it("{topK: 1, decimals: 0} returns one rounded value per row, the rest -Infinity", async () => {
    const c = await client(["digits-policy", "digits"]);
    const plain = await loadRuntime(optionsFor(h, served), c.token, new IDBFactory());
    const hardened = await loadRuntime(
      optionsFor(h, served, { manifestUrl: served.url("digits-policy") }),
      c.token,
    );
    const batch = { pixels: { type: "float32", data: new Float32Array(3 * 784).fill(0.3), dims: [3, 784] } };
    const copy = { pixels: { ...batch.pixels, data: new Float32Array(batch.pixels.data) } };
    const full = (await plain.runtime.run(batch)).probabilities?.data as Float32Array;
    const out = (await hardened.runtime.run(copy)).probabilities?.data as Float32Array;
    expect(out.length).toBe(30);
    for (let row = 0; row < 3; row++) {
      const r = Array.from(full.subarray(row * 10, row * 10 + 10));
      const best = r.indexOf(Math.max(...r));
      const got = Array.from(out.subarray(row * 10, row * 10 + 10));
      expect(got.filter((v) => Number.isFinite(v)).length).toBe(1);
      expect(got[best]).toBe(Math.round(r[best] as number));
      expect(got.filter((v) => v === Number.NEGATIVE_INFINITY).length).toBe(9);
    }
    expect(Array.from(full).filter((v) => Number.isFinite(v) && v !== Math.round(v)).length).toBeGreaterThan(
      0,
    );
  });
});
