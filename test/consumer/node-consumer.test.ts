/**
 * The package as users install it, from Node: the packed tarball's contents, a browser-only
 * install (no native code, no server packages), and a server user's path exactly as the
 * README gives it: `modelvault serve`, then pack sealed to that server, register, grant,
 * plus `modelvault/pack` and `modelvault/server` imported from a script of the app's own.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO } from "../../scripts/pack-tarball.js";
import { createApp, type PackedTarball, packForConsumers, run } from "./consumer-app.js";

const DIGITS = join(REPO, "models/digits/digits.onnx");
let tarball: PackedTarball;
let browserApp: string;
let serverApp: string;
const servers: ChildProcess[] = [];

beforeAll(async () => {
  tarball = await packForConsumers();
  [browserApp, serverApp] = await Promise.all([
    createApp(tarball, { name: "browser-only" }),
    createApp(tarball, { name: "server-user", tools: ["better-sqlite3"] }),
  ]);
}, 300_000);

afterAll(async () => {
  for (const s of servers) s.kill("SIGTERM");
  for (const dir of [browserApp, serverApp, dirname(tarball.path)])
    if (dir) await rm(dir, { recursive: true, force: true });
});

async function du(dir: string): Promise<{ bytes: number; packages: number; native: string[] }> {
  let bytes = 0;
  let packages = 0;
  const native: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isSymbolicLink()) continue;
      if (e.isDirectory()) await walk(p);
      else {
        bytes += (await stat(p)).size;
        if (e.name === "package.json" && /node_modules\/(@[^/]+\/)?[^/@]+$/.test(d)) packages++;
        if (e.name.endsWith(".node")) native.push(p);
      }
    }
  };
  await walk(join(dir, "node_modules"));
  return { bytes, packages, native };
}

describe("the packed tarball", () => {
  it("ships the build, the sources its declaration maps point at, docs and nothing else", () => {
    const paths = tarball.files.map((f) => f.path);
    const allowed =
      /^(dist\/|src\/|bin\/modelvault\.js$|docs\/[A-Z-]+\.md$|README\.md$|LICENSE$|package\.json$)/;
    expect(paths.filter((p) => !allowed.test(p))).toEqual([]);
    for (const p of ["dist/index.js", "dist/worker.js", "dist/cli.js", "dist/server.js", "dist/vite.js"])
      expect(paths).toContain(p);
    expect(paths.some((p) => /(^|\/)test\/|\.test\.ts$|^bench\/|^\.ci\//.test(p))).toBe(false);
  });

  it("installs for a browser-only app without native code or server packages", async () => {
    const modules = await readdir(join(browserApp, "node_modules"));
    for (const server of ["better-sqlite3", "pg", "hono", "@hono", "kysely", "comlink", "idb"])
      expect(modules).not.toContain(server);
    const size = await du(browserApp);
    expect(size.native).toEqual([]);
    console.log(
      `browser-only install: ${size.packages} packages, ${(size.bytes / 1e6).toFixed(1)} MB (tarball ${(tarball.size / 1e3).toFixed(0)} kB, ${tarball.files.length} files)`,
    );
  });

  it("names the missing driver when a browser-only install tries to serve", async () => {
    const r = await run("npx", ["modelvault", "serve", "--data", ".data", "--port", "0"], {
      cwd: browserApp,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("ERR_DEPENDENCY_MISSING");
    expect(r.stderr).toContain("npm install better-sqlite3@12");
  });
});

/** Starts `npx modelvault serve` in the app; resolves with its URL and bootstrap admin key. */
async function serve(cwd: string): Promise<{ url: string; admin: string }> {
  const child = spawn("npx", ["modelvault", "serve", "--data", ".data/server", "--port", "0"], { cwd });
  servers.push(child);
  let out = "";
  let err = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start:\n${err}`)), 60_000);
    const ready = () => {
      const url = /license server on (http:\/\/[^\s]+) /.exec(err)?.[1];
      if (!url || !out.trim()) return;
      clearTimeout(timer);
      resolve({ url, admin: out.trim() });
    };
    child.stdout.on("data", (d) => {
      out += d;
      ready();
    });
    child.stderr.on("data", (d) => {
      err += d;
      ready();
    });
    child.once("exit", (code) => reject(new Error(`serve exited with ${code}:\n${err}`)));
  });
}

describe("a server user, following the README", () => {
  it("runs the CLI from the installed package: serve, keygen, pack to the server, register, grant", async () => {
    const cwd = serverApp;
    const cli = (args: string[], env: Record<string, string> = {}) =>
      run("npx", ["modelvault", ...args], { cwd, env });
    const help = await cli(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("MODELVAULT_SERVER");

    const { url, admin } = await serve(cwd);
    const as = (key: string) => ({ MODELVAULT_SERVER: url, MODELVAULT_API_KEY: key });
    expect((await cli(["keygen", "--out", "keys"])).code).toBe(0);
    const principal = async (name: string, role: string) => {
      const id = (
        await cli(["admin", "principal", "create", "--name", name, "--roles", role], as(admin))
      ).stdout.trim();
      const key = (await cli(["admin", "key", "create", id], as(admin))).stdout.trim();
      return { id, key };
    };
    const publisher = await principal("acme", "publisher");
    const add = await cli(
      ["admin", "publisher-key", "add", "keys/publisher.public.jwk.json", "--principal", publisher.id],
      as(admin),
    );
    expect(add.stderr).toBe("");
    const licensor = await principal("sales", "licensor");
    const client = await principal("app", "client");

    const pack = await cli([
      "pack",
      DIGITS,
      "--id",
      "digits",
      "--version",
      "1",
      "--sign-key",
      "keys/publisher.private.jwk.json",
      "--recipient",
      url,
      "--out",
      "dist/digits",
    ]);
    expect(pack.code, pack.stderr).toBe(0);
    expect(pack.stderr).toContain("content-key.jwe is for `modelvault register`");
    const register = await cli(["register", "dist/digits"], as(publisher.key));
    expect(register.code, register.stderr).toBe(0);
    expect(register.stdout).toContain("registered digits v1");
    const grant = await cli(
      ["grant", "--principal", client.id, "--model", "digits", "--quota", "1000"],
      as(licensor.key),
    );
    expect(grant.code, grant.stderr).toBe(0);

    const refused = await cli(["register", "dist/digits"], {
      MODELVAULT_SERVER: "http://127.0.0.1:9",
      MODELVAULT_API_KEY: publisher.key,
    });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("ERR_CLI_SERVER_UNREACHABLE");
    expect(refused.stderr).toContain("http://127.0.0.1:9");

    const ort = await cli(["copy-ort", "public/ort"]);
    expect(ort.code).toBe(0);
    expect((await readdir(join(cwd, "public/ort"))).sort()).toEqual([
      "ort-wasm-simd-threaded.jsep.mjs",
      "ort-wasm-simd-threaded.jsep.wasm",
    ]);
  }, 180_000);

  it("imports modelvault/pack and modelvault/server from a script of its own", async () => {
    await writeFile(
      join(serverApp, "embed.mjs"),
      `import { packModel, verifyPackage, generateKeyPairJwk } from "modelvault/pack";
import { startServer } from "modelvault/server";
import { readFile } from "node:fs/promises";
const server = await startServer({ dataDir: ".data/embedded", port: 0, log: () => {} });
const admin = await server.bootstrapAdmin();
const keys = await generateKeyPairJwk("sig");
const packed = await packModel({ modelPath: process.argv[2], id: "digits", version: 1, signingKey: keys.privateJwk,
  recipient: server.registrationKey, outDir: ".data/embedded-pkg", force: true });
const report = await verifyPackage(".data/embedded-pkg", { publisherKeys: [keys.publicJwk] });
const jwks = await (await fetch(server.url + "/.well-known/jwks.json")).json();
await server.close();
console.log(JSON.stringify({ admin: Boolean(admin?.token), shards: report.shards, size: packed.manifest.size,
  enc: jwks.keys.some((k) => k.kid === server.registrationKey.kid) }));
`,
    );
    const r = await run(process.execPath, ["embed.mjs", DIGITS], { cwd: serverApp });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ admin: true, enc: true });
    expect(out.shards).toBeGreaterThan(0);
    expect(out.size).toBe((await readFile(DIGITS)).byteLength);
  }, 60_000);
});
