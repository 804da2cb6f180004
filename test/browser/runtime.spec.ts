import { expect, type Page, test } from "@playwright/test";
import { loadDigits } from "../../models/digits/dataset.js";
import { type BrowserEnv, browserEnv, newClient } from "./env.js";

const WASM = "/node_modules/onnxruntime-web/dist/";
let env: BrowserEnv;
test.beforeAll(() => {
  env = browserEnv();
});

const sample = loadDigits().heldOut.slice(0, 100);
const pixels = Array.from(sample.flatMap((d) => Array.from(d.pixels)));
const labels = sample.map((d) => d.label);

async function open(page: Page) {
  await page.goto("/test/browser/pages/runtime.html");
  await expect(page).toHaveTitle("runtime ready");
}

/** Loads a model in the page and keeps it as window.model; returns what the page saw, or the error code. */
async function load(page: Page, token: string, over: Record<string, unknown> = {}, path = "digits-v1") {
  return page.evaluate(
    async ({ env, token, over, path, wasm }) => {
      const w = globalThis as unknown as Record<string, any>;
      const progress: string[] = [];
      try {
        w.model = await w.mv.loadModel(`/test/browser/fixtures-out/${path}/manifest.jws`, {
          licenseServer: env.licenseServer,
          credential: token,
          publisherKeys: [env.publisherKey],
          wasmPaths: wasm,
          backend: "wasm",
          retry: { attempts: 2, baseDelayMs: 50 },
          onProgress: (p: { status: string }) => progress.push(p.status),
          ...over,
        });
        await w.model.whenCached();
        return { ok: true, progress, backend: w.model.backend, license: w.model.license };
      } catch (e) {
        return { ok: false, code: (e as { code?: string }).code ?? String(e), progress };
      }
    },
    { env, token, over, path, wasm: WASM },
  );
}

async function predict(page: Page) {
  return page.evaluate(
    async ({ pixels, n }) => {
      const w = globalThis as unknown as Record<string, any>;
      try {
        const out = await w.model.run({ pixels: { data: new Float32Array(pixels), dims: [n, 784] } });
        return { ok: true, probs: Array.from(out.probabilities.data as Float32Array) };
      } catch (e) {
        return { ok: false, code: (e as { code?: string }).code ?? String(e), probs: [] as number[] };
      }
    },
    { pixels, n: sample.length },
  );
}

const argmax = (probs: number[], i: number) => {
  const row = probs.slice(i * 10, i * 10 + 10);
  return row.indexOf(Math.max(...row));
};

test("loads the digits model and predicts held-out digits like plain onnxruntime-web", async ({ page }) => {
  const client = await newClient(env);
  await open(page);
  const loaded = await load(page, client.token);
  expect(loaded.ok, JSON.stringify(loaded)).toBe(true);
  expect(loaded.progress).toEqual(
    expect.arrayContaining([
      "manifest-verified",
      "license-granted",
      "shard-downloaded",
      "shard-decrypted",
      "session-created",
      "ready",
    ]),
  );
  const ours = await predict(page);
  expect(ours.ok).toBe(true);
  const correct = labels.filter((l, i) => argmax(ours.probs, i) === l).length;
  expect(correct / labels.length).toBeGreaterThanOrEqual(0.95);
  const plain = await page.evaluate(
    async ({ pixels, n }) => {
      const w = globalThis as unknown as Record<string, any>;
      const bytes = new Uint8Array(await (await fetch("/models/digits/digits.onnx")).arrayBuffer());
      const s = await w.ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
      const out = await s.run({ pixels: new w.ort.Tensor("float32", new Float32Array(pixels), [n, 784]) });
      return Array.from(out.probabilities.data as Float32Array);
    },
    { pixels, n: sample.length },
  );
  for (let i = 0; i < plain.length; i++)
    expect(Math.abs((ours.probs[i] as number) - (plain[i] as number))).toBeLessThan(1e-5);
});

test("a tampered shard or manifest on the server: the load fails with its code, no session", async ({
  page,
}) => {
  const client = await newClient(env);
  await open(page);
  const tampered = await load(page, client.token, { cache: false }, "digits-tampered");
  expect(tampered.ok).toBe(false);
  expect(tampered.code).toBe("ERR_SHARD_DIGEST_MISMATCH");
  expect(tampered.progress).not.toContain("session-created");
  await page.route("**/digits-v1/manifest.jws", async (route) => {
    const body = await (await route.fetch()).text();
    const [h, p, s] = body.split(".");
    const claims = JSON.parse(atob((p as string).replace(/-/g, "+").replace(/_/g, "/")));
    claims.model.version = 99;
    const forged = btoa(JSON.stringify(claims)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    await route.fulfill({ body: `${h}.${forged}.${s}` });
  });
  const forged = await load(page, client.token, { cache: false });
  expect(forged.code).toBe("ERR_MANIFEST_SIGNATURE_INVALID");
  expect(forged.progress).toEqual([]);
});

test("rollback: after v2, a served v1 manifest is refused", async ({ page }) => {
  const client = await newClient(env);
  await open(page);
  expect((await load(page, client.token, {}, "digits-v2")).ok).toBe(true);
  const old = await load(page, client.token, {}, "digits-v1");
  expect(old.code).toBe("ERR_MANIFEST_ROLLBACK");
});

test("revocation: after the next renewal, run() fails with the revoked code", async ({ page }) => {
  const client = await newClient(env);
  await open(page);
  const loaded = await load(page, client.token);
  expect(loaded.ok, JSON.stringify(loaded)).toBe(true);
  expect((await predict(page)).ok).toBe(true);
  const r = await fetch(`${env.licenseServer}/v1/devices/${loaded.license.deviceJkt}/revoke`, {
    method: "POST",
    headers: { authorization: `Bearer ${env.licensor.token}` },
  });
  expect(r.status).toBe(200);
  const renewed = await page.evaluate(async () => {
    const w = globalThis as unknown as Record<string, any>;
    return w.model.renew().then(
      () => "renewed",
      (e: { code: string }) => e.code,
    );
  });
  expect(renewed).toBe("ERR_DEVICE_REVOKED");
  const after = await predict(page);
  expect(after.code).toBe("ERR_DEVICE_REVOKED");
});

test("the device keys are non-extractable, and no IndexedDB value holds plaintext model bytes", async ({
  page,
}) => {
  const client = await newClient(env);
  await open(page);
  const loaded = await load(page, client.token);
  expect(loaded.ok, JSON.stringify(loaded)).toBe(true);
  const findings = await page.evaluate(async () => {
    const model = new Uint8Array(await (await fetch("/models/digits/digits.onnx")).arrayBuffer());
    // Probes: 32-byte windows from across the plaintext model.
    const probes = [1000, 50_000, 200_000, 400_000].map((o) => model.subarray(o, o + 32));
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const req = indexedDB.open("modelvault");
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    const stores = Array.from(db.objectStoreNames);
    let scanned = 0;
    let hits = 0;
    const keys: { extractable: boolean; exported: string }[] = [];
    const bytesOf = (v: unknown): Uint8Array[] => {
      if (v instanceof ArrayBuffer) return [new Uint8Array(v)];
      if (ArrayBuffer.isView(v)) return [new Uint8Array(v.buffer, v.byteOffset, v.byteLength)];
      if (typeof v === "string") return [new TextEncoder().encode(v)];
      if (v && typeof v === "object" && !(v instanceof CryptoKey)) return Object.values(v).flatMap(bytesOf);
      return [];
    };
    const contains = (hay: Uint8Array, needle: Uint8Array) => {
      outer: for (let i = 0; i + needle.length <= hay.length; i++) {
        for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
        return true;
      }
      return false;
    };
    for (const name of stores) {
      const values = await new Promise<unknown[]>((resolve) => {
        const req = db.transaction(name).objectStore(name).getAll();
        req.onsuccess = () => resolve(req.result);
      });
      for (const v of values) {
        for (const b of bytesOf(v)) {
          scanned += b.length;
          if (probes.some((p) => contains(b, p))) hits++;
        }
        if (name === "devices") {
          for (const k of [
            (v as { signPrivate: CryptoKey }).signPrivate,
            (v as { agreePrivate: CryptoKey }).agreePrivate,
          ]) {
            const exported = await crypto.subtle.exportKey("jwk", k).then(
              () => "exported!",
              (e: Error) => e.name,
            );
            keys.push({ extractable: k.extractable, exported });
          }
        }
      }
    }
    return { stores, scanned, hits, keys };
  });
  expect(findings.scanned).toBeGreaterThan(400_000); // the ciphertext shards were scanned
  expect(findings.hits).toBe(0);
  expect(findings.keys.length).toBeGreaterThanOrEqual(2);
  for (const k of findings.keys) expect(k).toEqual({ extractable: false, exported: "InvalidAccessError" });
});

test("the manifest's signed output policy is applied in the worker: top-1, rounded", async ({ page }) => {
  const client = await newClient(env, { modelId: "digits-policy" });
  await open(page);
  const loaded = await load(page, client.token, { expect: { modelId: "digits-policy" } }, "digits-policy");
  expect(loaded.ok, JSON.stringify(loaded)).toBe(true);
  const hardened = await predict(page);
  expect(hardened.ok).toBe(true);
  const plain = await page.evaluate(
    async ({ pixels, n }) => {
      const w = globalThis as unknown as Record<string, any>;
      const bytes = new Uint8Array(await (await fetch("/models/digits/digits.onnx")).arrayBuffer());
      const s = await w.ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
      const out = await s.run({ pixels: new w.ort.Tensor("float32", new Float32Array(pixels), [n, 784]) });
      return Array.from(out.probabilities.data as Float32Array);
    },
    { pixels, n: sample.length },
  );
  for (let i = 0; i < sample.length; i++) {
    const row = hardened.probs.slice(i * 10, i * 10 + 10);
    const finite = row.filter((v) => Number.isFinite(v));
    expect(finite.length).toBe(1); // Infinity does not survive structured clone as finite: 9 are -Infinity
    expect(row.filter((v) => v === Number.NEGATIVE_INFINITY).length).toBe(9);
    const best = argmax(plain, i);
    expect(row[best]).toBe(Math.round(plain[i * 10 + best] as number));
  }
  const correct = labels.filter((l, i) => argmax(hardened.probs, i) === l).length;
  expect(correct / labels.length).toBeGreaterThanOrEqual(0.95);
});

test("a manifest for another model than the app expects is refused (ERR_MODEL_MISMATCH), before any license", async ({
  page,
}) => {
  const client = await newClient(env);
  await open(page);
  const swapped = await load(page, client.token, { expect: { modelId: "digits" } }, "digits-policy");
  expect(swapped.ok).toBe(false);
  expect(swapped.code).toBe("ERR_MODEL_MISMATCH");
  expect(swapped.progress).not.toContain("license-granted");
});
