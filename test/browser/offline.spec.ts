import { type BrowserContext, chromium, expect, type Page, test } from "@playwright/test";
import { CHROMIUM_ARGS, chromiumPath, WEBGPU_ARGS } from "./chromium.js";
import { type BrowserEnv, browserEnv, newClient } from "./env.js";

const WASM = "/node_modules/onnxruntime-web/dist/";
let env: BrowserEnv;
test.beforeAll(() => {
  env = browserEnv();
});

async function open(page: Page) {
  await page.goto("/test/browser/pages/runtime.html");
  await expect(page).toHaveTitle("runtime ready");
}

/** Loads (disposing any previous model first); returns { ok, code, license, backend }. */
function load(page: Page, token: string, over: Record<string, unknown> = {}) {
  return page.evaluate(
    async ({ env, token, over, wasm }) => {
      const w = globalThis as unknown as Record<string, any>;
      await w.model?.dispose();
      w.model = undefined;
      try {
        w.model = await w.mv.loadModel("/test/browser/fixtures-out/digits-v1/manifest.jws", {
          licenseServer: env.licenseServer,
          credential: token,
          publisherKeys: [env.publisherKey],
          licenseKeys: env.licenseKeys,
          wasmPaths: wasm,
          backend: "wasm",
          retry: { attempts: 1, baseDelayMs: 10 },
          ...over,
        });
        await w.model.whenCached(); // offline restarts below need the whole model cached
        return { ok: true, code: "", license: w.model.license, backend: w.model.backend as string };
      } catch (e) {
        return { ok: false, code: (e as { code?: string }).code ?? String(e), license: null, backend: "" };
      }
    },
    { env, token, over, wasm: WASM },
  );
}

function runTimes(page: Page, n: number) {
  return page.evaluate(async (n) => {
    const w = globalThis as unknown as Record<string, any>;
    const outs: number[][] = [];
    for (let i = 0; i < n; i++) {
      const x = new Float32Array(784);
      for (let j = 0; j < 784; j++) x[j] = ((i * 31 + j * 7) % 17) / 17;
      const out = await w.model.run({ pixels: { data: x, dims: [1, 784] } });
      outs.push(Array.from(out.probabilities.data as Float32Array));
    }
    return outs;
  }, n);
}

/**
 * Cuts the license server and the model files off, as a lost connection would. (Playwright's
 * setOffline would also cut the page's own scripts, which a real app keeps in its service
 * worker's cache; the demo does.)
 */
async function goOffline(context: BrowserContext, offline = true) {
  if (!offline) return context.unrouteAll();
  await context.route(
    (url) =>
      url.origin === new URL(env.licenseServer).origin ||
      url.pathname.startsWith("/test/browser/fixtures-out/"),
    (route) => route.abort("internetdisconnected"),
  );
}

async function auditorToken(): Promise<string> {
  const post = async (token: string, path: string, body?: unknown) =>
    (await (
      await fetch(`${env.licenseServer}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        ...(body ? { body: JSON.stringify(body) } : {}),
      })
    ).json()) as Record<string, string>;
  const p = await post(env.admin, "/v1/admin/principals", {
    name: `auditor-${Math.random()}`,
    roles: ["auditor"],
  });
  return (await post(env.admin, `/v1/admin/principals/${p.id}/api-keys`)).token as string;
}

test("offline: a restart works from cache within offline_until, is refused after it, and a clock set back is refused", async ({
  page,
  context,
}) => {
  const client = await newClient(env, { licenseTtlSeconds: 300, offlineSeconds: 3600 });
  await open(page);
  const online = await load(page, client.token);
  expect(online.ok, online.code).toBe(true);
  expect(online.license.offline).toBe(false);
  const offlineUntil = online.license.offlineUntil as number;
  await goOffline(context);
  const cached = await load(page, client.token);
  expect(cached.ok, cached.code).toBe(true);
  expect(cached.license.offline).toBe(true);
  expect((await runTimes(page, 2)).length).toBe(2);
  await page.clock.setFixedTime(new Date((offlineUntil + 10) * 1000));
  const late = await load(page, client.token);
  expect(late.code).toBe("ERR_LICENSE_EXPIRED");
  await page.clock.setFixedTime(new Date(Date.now() - 86_400_000));
  const rolledBack = await load(page, client.token);
  expect(rolledBack.code).toBe("ERR_CLOCK_ROLLBACK");
});

test("usage: after runs, restarts and an offline period the server holds every report once, in order, with the right counts", async ({
  page,
  context,
}) => {
  const client = await newClient(env);
  await open(page);
  const first = await load(page, client.token);
  await runTimes(page, 5);
  await load(page, client.token); // dispose flushes; load again online
  await runTimes(page, 3);
  await goOffline(context);
  await load(page, client.token); // the dispose's flush fails offline: the report stays in the outbox
  await runTimes(page, 2);
  await page.evaluate(async () => (globalThis as unknown as Record<string, any>).model.dispose());
  await goOffline(context, false);
  await load(page, client.token); // online again: the outbox drains
  await page.evaluate(async () => (globalThis as unknown as Record<string, any>).model.flushUsage());
  const auditor = await auditorToken();
  const usage = (await (
    await fetch(`${env.licenseServer}/v1/usage?limit=1000`, {
      headers: { authorization: `Bearer ${auditor}` },
    })
  ).json()) as { usage: { device_id: string; seq: number; count: number }[] };
  const mine = usage.usage
    .filter((u) => u.device_id === first.license.deviceJkt)
    .sort((a, b) => a.seq - b.seq);
  expect(mine.map((u) => u.seq)).toEqual(mine.map((_, i) => i + 1));
  expect(mine.reduce((n, u) => n + u.count, 0)).toBe(10);
});

test("a license and cached data copied into another browser profile do not work there", async ({
  browser,
}) => {
  const client = await newClient(env);
  const a = await browser.newContext();
  const b = await browser.newContext();
  try {
    const pa = await a.newPage();
    await open(pa);
    expect((await load(pa, client.token)).ok).toBe(true);
    const stolen = await pa.evaluate(async () => {
      const db = await new Promise<IDBDatabase>((r) => {
        const q = indexedDB.open("modelvault");
        q.onsuccess = () => r(q.result);
      });
      return new Promise<{ token: string; jwks: unknown }[]>((r) => {
        const q = db.transaction("licenses").objectStore("licenses").getAll();
        q.onsuccess = () => r(q.result);
      });
    });
    expect(stolen.length).toBe(1);
    const pb = await b.newPage();
    await open(pb);
    expect((await load(pb, client.token)).ok).toBe(true); // B is a device of its own, with its own keys
    // Plant A's license (and JWKS) where B keeps its own, then start B offline so it must use it.
    await pb.evaluate(async (stolen) => {
      const db = await new Promise<IDBDatabase>((r) => {
        const q = indexedDB.open("modelvault");
        q.onsuccess = () => r(q.result);
      });
      const store = db.transaction("licenses", "readwrite").objectStore("licenses");
      const keys = await new Promise<IDBValidKey[]>((r) => {
        const q = store.getAllKeys();
        q.onsuccess = () => r(q.result);
      });
      for (const key of keys) store.put({ ...(stolen[0] as object), key });
    }, stolen);
    await goOffline(b);
    const copied = await load(pb, client.token);
    expect(copied.ok).toBe(false);
    expect(copied.code).toBe("ERR_LICENSE_WRONG_DEVICE");
  } finally {
    await a.close();
    await b.close();
  }
});

test("a license re-signed by a key planted in the profile does not start offline (licenses verify under pinned keys)", async ({
  page,
  context,
}) => {
  const client = await newClient(env, { licenseTtlSeconds: 300, offlineSeconds: 3600 });
  await open(page);
  expect((await load(page, client.token)).ok).toBe(true);
  await page.evaluate(async () => (globalThis as unknown as Record<string, any>).model.dispose());
  // The attacker edits the profile: a new key of their own, the license re-signed with a 10-year
  // offline window and a huge allowance, and their key stored beside it.
  await page.evaluate(async () => {
    const b64 = (bytes: Uint8Array) =>
      btoa(String.fromCharCode(...bytes))
        .replace(/\+/g, "-")
        .replace(/\//g, "_")
        .replace(/=+$/, "");
    const text = (v: unknown) => b64(new TextEncoder().encode(JSON.stringify(v)));
    const db = await new Promise<IDBDatabase>((r) => {
      const q = indexedDB.open("modelvault");
      q.onsuccess = () => r(q.result);
    });
    const records = await new Promise<{ key: string; token: string }[]>((r) => {
      const q = db.transaction("licenses").objectStore("licenses").getAll();
      q.onsuccess = () => r(q.result);
    });
    const record = records[0] as { key: string; token: string };
    const claims = JSON.parse(
      atob((record.token.split(".")[1] as string).replace(/-/g, "+").replace(/_/g, "/")),
    );
    claims.offline_until = claims.iat + 10 * 365 * 86400;
    claims.quota.allowance = 1e9;
    const pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign"]);
    const jwk = await crypto.subtle.exportKey("jwk", pair.publicKey);
    const head = `${text({ alg: "ES256", typ: "license+jwt", kid: "planted" })}.${text(claims)}`;
    const sig = new Uint8Array(
      await crypto.subtle.sign(
        { name: "ECDSA", hash: "SHA-256" },
        pair.privateKey,
        new TextEncoder().encode(head),
      ),
    );
    const forged = {
      ...record,
      token: `${head}.${b64(sig)}`,
      jwks: {
        keys: [{ kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y, kid: "planted", alg: "ES256", use: "sig" }],
      },
    };
    await new Promise<void>((r) => {
      const tx = db.transaction("licenses", "readwrite");
      tx.objectStore("licenses").put(forged);
      tx.oncomplete = () => r();
    });
  });
  await goOffline(context);
  const forged = await load(page, client.token);
  expect(forged.ok).toBe(false);
  expect(forged.code).toBe("ERR_LICENSE_INVALID");
});

test("WebGPU (SwiftShader) gives the same outputs as WASM within tolerance", async ({ baseURL }) => {
  test.setTimeout(240_000);
  const client = await newClient(env);
  const browser = await chromium.launch({
    executablePath: chromiumPath(),
    args: [...CHROMIUM_ARGS, ...WEBGPU_ARGS],
  });
  try {
    const page = await browser.newPage({ baseURL: baseURL as string });
    await open(page);
    const hasGpu = await page.evaluate(async () => Boolean(await (navigator as any).gpu?.requestAdapter()));
    expect(hasGpu).toBe(true);
    const gpu = await load(page, client.token, { backend: "webgpu" });
    expect(gpu.ok, gpu.code).toBe(true);
    expect(gpu.backend).toBe("webgpu");
    const gpuOut = await runTimes(page, 3);
    const wasm = await load(page, client.token, { backend: "wasm" });
    expect(wasm.backend).toBe("wasm");
    const wasmOut = await runTimes(page, 3);
    for (let i = 0; i < 3; i++) {
      for (let k = 0; k < 10; k++)
        expect(Math.abs((gpuOut[i]?.[k] as number) - (wasmOut[i]?.[k] as number))).toBeLessThan(1e-3);
    }
  } finally {
    await browser.close();
  }
});
