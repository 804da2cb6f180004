/**
 * Outside apps, built from the packed tarball with only the public API: a Vite app (strict
 * `tsc --noEmit`, README snippets included, then `vite build`), served statically without and
 * with cross-origin isolation and under `vite` dev; and a webpack 5 app. In each, Chromium
 * loads a packed model through `loadModel` and must get exactly plain onnxruntime-web's outputs.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { cp, mkdir, mkdtemp, readdir, rename, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { expect, test } from "@playwright/test";
import * as ort from "onnxruntime-web";
import { loadDigits } from "../../models/digits/dataset.js";
import { REPO } from "../../scripts/pack-tarball.js";
import { apiCall, createPrincipal, packAndRegister } from "../../scripts/provision.js";
import { generateKeyPairJwk } from "../../src/pack/keygen.js";
import { bootstrapAdmin } from "../../src/server/bootstrap.js";
import { type RunningServer, startServer } from "../../src/server/start-server.js";
import { CROSS_ORIGIN_ISOLATION_HEADERS } from "../../src/vite/index.js";
import { viteAppFiles, webpackAppFiles } from "../consumer/app-sources.js";
import { createApp, packForConsumers, run } from "../consumer/consumer-app.js";
import { type StaticServer, startStaticServer } from "../helpers/static-server.js";

const DIGITS = join(REPO, "models/digits/digits.onnx");
const samples = loadDigits().heldOut.slice(0, 4);
const input = samples.flatMap((d) => Array.from(d.pixels));
const dims = [samples.length, 784];

let license: RunningServer;
let config: Record<string, unknown>;
let expected: number[];
const origins: Record<string, string> = {};
const statics: StaticServer[] = [];
let dev: ChildProcess | undefined;
let viteApp: string;
let webpackApp: string;
/** Everything made in the temporary directory, removed afterwards. */
const made: string[] = [];

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

async function plainOnnxruntime(): Promise<number[]> {
  const session = await ort.InferenceSession.create(DIGITS, { executionProviders: ["wasm"] });
  const out = await session.run({ pixels: new ort.Tensor("float32", Float32Array.from(input), dims) });
  await session.release();
  return Array.from(out.probabilities?.data as Float32Array);
}

/** Files below `dir`, relative, for asserting what a build emitted. */
async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
}

test.beforeAll(async () => {
  test.setTimeout(600_000);
  const tarball = await packForConsumers();
  made.push(dirname(tarball.path));
  const publisher = await generateKeyPairJwk("sig");
  [viteApp, webpackApp] = await Promise.all([
    createApp(tarball, {
      name: "vite-app",
      files: await viteAppFiles(publisher.publicJwk),
      tools: ["vite", "typescript"],
    }),
    createApp(tarball, { name: "webpack-app", files: webpackAppFiles(), tools: ["webpack", "webpack-cli"] }),
  ]);
  made.push(viteApp, webpackApp);

  // Static hosting of the builds (files are read per request, so they may come later).
  const plain = await startStaticServer(join(viteApp, "dist"));
  const isolated = await startStaticServer(join(viteApp, "dist"), {
    ...CROSS_ORIGIN_ISOLATION_HEADERS,
    "Cross-Origin-Resource-Policy": "same-origin",
  });
  const webpack = await startStaticServer(join(webpackApp, "dist"));
  statics.push(plain, isolated, webpack);
  const devPort = await freePort();
  Object.assign(origins, {
    "vite build, static, not isolated": plain.url,
    "vite build, static, cross-origin isolated": isolated.url,
    "vite dev server": `http://127.0.0.1:${devPort}`,
    "webpack 5 build, static": webpack.url,
  });

  // A license server for those origins; the model packed, sealed to it, registered, granted.
  const serverData = await mkdtemp(join(tmpdir(), "modelvault-consumer-server-"));
  made.push(serverData);
  license = await startServer({
    dataDir: serverData,
    port: 0,
    corsOrigins: Object.values(origins),
    log: () => {},
  });
  const admin = (await bootstrapAdmin(license.ctx))?.token as string;
  const call = apiCall(license.url);
  const publisherPrincipal = await createPrincipal(call, admin, "publisher", ["publisher"]);
  await call(admin, "POST", "/v1/admin/publisher-keys", {
    jwk: publisher.publicJwk,
    principalId: publisherPrincipal.id,
  });
  const licensor = await createPrincipal(call, admin, "licensor", ["licensor"]);
  const client = await createPrincipal(call, admin, "client", ["client"]);
  const pkg = await mkdtemp(join(tmpdir(), "modelvault-consumer-pkg-"));
  made.push(pkg);
  await packAndRegister(call, {
    publisherToken: publisherPrincipal.token,
    signingKey: publisher.privateJwk,
    registrationKey: license.ctx.keys.registration.publicJwk,
    modelPath: DIGITS,
    id: "digits",
    version: 1,
    outDir: pkg,
    shardSize: 64 * 1024,
  });
  await rm(join(pkg, "content-key.jwe"));
  await call(licensor.token, "POST", "/v1/entitlements", {
    principalId: client.id,
    modelId: "digits",
    scopes: ["infer"],
    quota: 1000,
    licenseAllowance: 20, // every page is a new device: each license reserves only this much
    periodSeconds: 86400,
    maxDevices: 10,
    licenseTtlSeconds: 600,
    offlineSeconds: 0,
    expiresAt: Math.floor(Date.now() / 1000) + 86400,
  });
  for (const dir of [join(viteApp, "public/models/digits"), join(webpackApp, "dist/models/digits")]) {
    await mkdir(dir, { recursive: true });
    await cp(pkg, dir, { recursive: true });
  }
  config = {
    manifest: "/models/digits/manifest.jws",
    licenseServer: license.url,
    credential: client.token,
    publisherKey: publisher.publicJwk,
    input,
    dims,
  };
  expected = await plainOnnxruntime();

  // Build as the apps' owners would.
  const tsc = await run("npx", ["tsc", "--noEmit", "-p", "."], { cwd: viteApp });
  expect(tsc.code, `tsc (strict) in the Vite app, README snippets included:\n${tsc.stdout}`).toBe(0);
  const vite = await run("npx", ["vite", "build"], { cwd: viteApp });
  expect(vite.code, vite.stderr).toBe(0);
  const webpackBuild = await run("npx", ["webpack"], { cwd: webpackApp });
  expect(webpackBuild.code, webpackBuild.stdout + webpackBuild.stderr).toBe(0);
  const copy = await run("npx", ["modelvault", "copy-ort", "dist/ort"], { cwd: webpackApp });
  expect(copy.code, copy.stderr).toBe(0);

  // The app's own vite binary, not through npx: one process, so stopping it stops the server.
  dev = spawn(
    join(viteApp, "node_modules/.bin/vite"),
    ["--port", String(devPort), "--strictPort", "--host", "127.0.0.1"],
    {
      cwd: viteApp,
      stdio: "ignore",
    },
  );
  await expect
    .poll(
      () =>
        fetch(`${origins["vite dev server"]}/`).then(
          (r) => r.status,
          () => 0,
        ),
      { timeout: 60_000 },
    )
    .toBe(200);
});

test.afterAll(async () => {
  if (dev && dev.exitCode === null) {
    const exited = new Promise((resolve) => dev?.once("exit", resolve));
    dev.kill("SIGTERM");
    await exited;
  }
  await Promise.all(statics.map((s) => s.close()));
  await license?.close();
  for (const dir of made) await rm(dir, { recursive: true, force: true, maxRetries: 5 });
});

test("the builds ship exactly onnxruntime-web's two runtime files, and no second 28 MB copy", async () => {
  for (const app of [viteApp, webpackApp]) {
    const wasm = (await listFiles(join(app, "dist"))).filter((f) => /\.wasm$/.test(f));
    expect(wasm).toEqual(["ort/ort-wasm-simd-threaded.jsep.wasm"]);
  }
  expect((await listFiles(join(viteApp, "dist/ort"))).sort()).toEqual([
    "ort-wasm-simd-threaded.jsep.mjs",
    "ort-wasm-simd-threaded.jsep.wasm",
  ]);
});

for (const target of [
  "vite build, static, not isolated",
  "vite build, static, cross-origin isolated",
  "vite dev server",
  "webpack 5 build, static",
]) {
  test(`${target}: loadModel gives plain onnxruntime-web's outputs`, async ({ page }) => {
    await page.goto(`${origins[target]}/`);
    await expect(page).toHaveTitle("app ready", { timeout: 60_000 });
    const result = await page.evaluate(
      (c) =>
        (
          window as unknown as { modelvaultApp: { classify(c: unknown): Promise<any> } }
        ).modelvaultApp.classify(c),
      config,
    );
    expect(result.ok, JSON.stringify(result)).toBe(true);
    expect(result.probabilities).toEqual(expected);
    expect(result.backend).toBe("wasm");
    expect(result.isolated).toBe(
      target !== "vite build, static, not isolated" && target !== "webpack 5 build, static",
    );
    // Every progress event arrived before loadModel() resolved.
    expect(result.statusesAtResolve.at(-1)).toBe("ready");
  });
}

test("a missing runtime file fails the load with its URL, before any license is requested", async ({
  page,
}) => {
  const before = await license.ctx.db.kysely
    .selectFrom("licenses")
    .select(({ fn }) => fn.countAll().as("n"))
    .executeTakeFirst();
  await page.goto(`${origins["webpack 5 build, static"]}/`);
  await expect(page).toHaveTitle("app ready", { timeout: 60_000 });
  const runtime = join(webpackApp, "dist/ort/ort-wasm-simd-threaded.jsep.mjs");
  await rename(runtime, `${runtime}.away`);
  const result = await page.evaluate(
    (c) =>
      (window as unknown as { modelvaultApp: { classify(c: unknown): Promise<any> } }).modelvaultApp.classify(
        c,
      ),
    config,
  );
  expect(result).toMatchObject({ ok: false, code: "ERR_RUNTIME_ASSET_MISSING" });
  expect(result.statuses).not.toContain("license-granted");
  const after = await license.ctx.db.kysely
    .selectFrom("licenses")
    .select(({ fn }) => fn.countAll().as("n"))
    .executeTakeFirst();
  expect(Number(after?.n)).toBe(Number(before?.n));
  await rename(`${runtime}.away`, runtime);
});
