/**
 * `npm start`: the whole story on one machine. Creates development keys (once), starts the
 * license server on its embedded SQLite database, packs and registers the digits model (plus a
 * deliberately tampered copy), provisions a demo client and a demo-only licensor, and starts the
 * demo page on Vite with the cross-origin isolation headers WASM threads need. Running it again
 * reuses everything. Ctrl-C stops both servers cleanly.
 *
 * MODELVAULT_DEMO_PORT (5173), MODELVAULT_SERVER_PORT (8787), MODELVAULT_DATA (.data) configure it.
 */
import { existsSync } from "node:fs";
import { cp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer as netServer } from "node:net";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createServer } from "vite";
import type { EcJwk } from "../src/core/jwk.js";
import { writePublicFile, writeSecretFile } from "../src/pack/key-files.js";
import { generateKeyPairJwk } from "../src/pack/keygen.js";
import { bootstrapAdmin } from "../src/server/bootstrap.js";
import { startServer } from "../src/server/start-server.js";
import { apiCall, createPrincipal, packAndRegister, tamperedCopy } from "./provision.js";

const root = fileURLToPath(new URL("../", import.meta.url));
const data = resolve(process.env.MODELVAULT_DATA ?? join(root, ".data"));
const demoPort = Number(process.env.MODELVAULT_DEMO_PORT ?? 5173);
const serverPort = Number(process.env.MODELVAULT_SERVER_PORT ?? 8787);
// Served files (packed models, the demo's config, the service worker) live in the data folder,
// so two demos with different data folders never overwrite each other's.
const publicDir = join(data, "public");
const say = (line: string) => process.stdout.write(`${line}\n`);

async function assertFree(port: number, what: string, variable: string): Promise<void> {
  await new Promise<void>((resolve) => {
    const probe = netServer();
    probe.once("error", () => {
      process.stderr.write(
        `port ${port} (${what}) is busy. Free it, or pick another: ${variable}=<port> npm start\n`,
      );
      process.exit(1);
    });
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve()));
  });
}

async function publisherKeys(): Promise<{ privateJwk: EcJwk; publicJwk: EcJwk }> {
  const dir = join(data, "keys");
  const priv = join(dir, "publisher.private.jwk.json");
  if (!existsSync(priv)) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const pair = await generateKeyPairJwk("sig");
    await writeSecretFile(priv, JSON.stringify(pair.privateJwk, null, 2));
    await writePublicFile(
      join(dir, "publisher.public.jwk.json"),
      JSON.stringify(pair.publicJwk, null, 2),
      true,
    );
    say(`created the development publisher key ${pair.publicJwk.kid}`);
  }
  return {
    privateJwk: JSON.parse(await readFile(priv, "utf8")),
    publicJwk: JSON.parse(await readFile(join(dir, "publisher.public.jwk.json"), "utf8")),
  };
}

await assertFree(serverPort, "license server", "MODELVAULT_SERVER_PORT");
await assertFree(demoPort, "demo page", "MODELVAULT_DEMO_PORT");
const origins = [`http://127.0.0.1:${demoPort}`, `http://localhost:${demoPort}`];
const server = await startServer({
  dataDir: join(data, "server"),
  port: serverPort,
  corsOrigins: origins,
  log: () => {},
});
const statePath = join(data, "demo-state.json");
type State = {
  admin: string;
  publisher: string;
  client: { id: string; token: string };
  licensor: { id: string; token: string };
  digest: string;
};
let state: State | undefined = existsSync(statePath)
  ? JSON.parse(await readFile(statePath, "utf8"))
  : undefined;
const boot = await bootstrapAdmin(server.ctx);
if (boot) state = undefined; // a fresh database: provision again

const call = apiCall(server.url);

const keys = await publisherKeys();
if (!state && boot) {
  const admin = boot.token;
  const publisher = await createPrincipal(call, admin, "demo publisher", ["publisher"]);
  await call(admin, "POST", "/v1/admin/publisher-keys", { jwk: keys.publicJwk, principalId: publisher.id });
  const licensor = await createPrincipal(call, admin, "demo licensor (demo only)", ["licensor"]);
  const client = await createPrincipal(call, admin, "demo client", ["client"]);
  const pkg = join(publicDir, "models", "digits");
  const { digest } = await packAndRegister(call, {
    publisherToken: publisher.token,
    signingKey: keys.privateJwk,
    registrationKey: server.ctx.keys.registration.publicJwk,
    modelPath: join(root, "models/digits/digits.onnx"),
    id: "digits",
    version: 1,
    outDir: pkg,
    shardSize: 64 * 1024,
  });
  await rm(join(pkg, "content-key.jwe")); // the sealed key belongs to the server, not the public folder
  await call(licensor.token, "POST", "/v1/entitlements", {
    principalId: client.id,
    modelId: "digits",
    scopes: ["infer", "offline"],
    quota: 5000,
    periodSeconds: 86400,
    licenseAllowance: 200,
    maxDevices: 10,
    licenseTtlSeconds: 120, // short, so renewals are visible
    offlineSeconds: 900,
    expiresAt: Math.floor(Date.now() / 1000) + 365 * 86400,
  });
  // A deliberately tampered copy: one bit flipped in one shard.
  await tamperedCopy(pkg, join(publicDir, "models", "digits-tampered"), 1, 1234);
  state = { admin, publisher: publisher.token, client, licensor, digest };
  await writeSecretFile(statePath, JSON.stringify(state, null, 2), true);
  say(
    "provisioned: publisher, demo client and demo-only licensor principals; digits v1 packed, registered and granted",
  );
} else if (!state) {
  process.stderr.write(
    `the server's database exists but ${statePath} is missing: remove ${join(data, "server")} to start over\n`,
  );
  process.exit(1);
} else {
  say(`reusing the keys, database and packed model in ${data}`);
}

await mkdir(publicDir, { recursive: true });
await cp(join(root, "demo", "sw.js"), join(publicDir, "sw.js"));
await writeFile(
  join(publicDir, "demo-config.json"),
  JSON.stringify({
    licenseServer: server.url,
    credential: state?.client.token,
    demoLicensorKey: state?.licensor.token,
    publisherKey: keys.publicJwk,
    // Pinned like the publisher key; a real app ships them (current and next) with its code.
    licenseKeys: [server.ctx.keys.current.publicJwk, server.ctx.keys.next.publicJwk],
    manifest: "/models/digits/manifest.jws",
    tamperedManifest: "/models/digits-tampered/manifest.jws",
    // Served by the modelvault() Vite plugin (src/vite): self-hosted, never a CDN.
    wasmPaths: "/ort/",
  }),
);

const vite = await createServer({
  configFile: join(root, "vite.config.ts"),
  root: join(root, "demo"),
  publicDir,
  server: { port: demoPort, host: "127.0.0.1", strictPort: true },
});
await vite.listen();
say("");
say(`  ModelVault demo:   http://127.0.0.1:${demoPort}/`);
say(`  license server:    ${server.url}  (SQLite in ${join(data, "server")})`);
say(
  "  demo client:       entitlement for digits, 2-minute licenses, 15 minutes offline, 200 inferences per license",
);
say("  Ctrl-C stops both.");
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  say("\nstopping: demo page, then license server (in-flight requests finish, audit checkpointed)");
  await vite.close();
  await server.close();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
