/**
 * Everything the browser tests talk to, on loopback: the Vite dev server (pages, worker, the
 * packed models under /test/browser/fixtures-out/) and a real license server on SQLite with a
 * publisher, a licensor and clients provisioned. Writes fixtures-out/env.json for the specs.
 */
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createServer } from "vite";
import { writePoolCeilModel } from "../../models/pool-ceil.js";
import { writeSyntheticModel } from "../../models/synthetic.js";
import { apiCall, createPrincipal, packAndRegister, tamperedCopy } from "../../scripts/provision.js";
import { generateKeyPairJwk } from "../../src/pack/keygen.js";
import { bootstrapAdmin } from "../../src/server/bootstrap.js";
import { startServer } from "../../src/server/start-server.js";

const port = Number(process.argv[2] ?? 5199);
const licensePort = Number(process.argv[3] ?? 5299);
const origin = `http://127.0.0.1:${port}`;
const out = fileURLToPath(new URL("./fixtures-out/", import.meta.url));
const digits = fileURLToPath(new URL("../../models/digits/digits.onnx", import.meta.url));

await mkdir(out, { recursive: true });
const dataDir = join(out, "server");
await rm(dataDir, { recursive: true, force: true });
const server = await startServer({
  dataDir,
  port: licensePort,
  corsOrigins: [origin, `http://localhost:${port}`],
  log: () => {},
});
const admin = (await bootstrapAdmin(server.ctx))?.token as string;
const call = apiCall(server.url);
const publisher = await createPrincipal(call, admin, "publisher", ["publisher"]);
const licensor = await createPrincipal(call, admin, "licensor", ["licensor"]);
const keys = await generateKeyPairJwk("sig");
await call(admin, "POST", "/v1/admin/publisher-keys", { jwk: keys.publicJwk, principalId: publisher.id });
const register = (modelPath: string, id: string, version: number, dir: string, shardSize?: number) =>
  packAndRegister(call, {
    publisherToken: publisher.token,
    signingKey: keys.privateJwk,
    registrationKey: server.ctx.keys.registration.publicJwk,
    modelPath,
    id,
    version,
    outDir: join(out, dir),
    ...(shardSize ? { shardSize } : {}),
  });
const { digest } = await register(digits, "digits", 1, "digits-v1", 64 * 1024);
await register(digits, "digits", 2, "digits-v2", 64 * 1024);
// A model whose weights live in three external-data files, packed in 256 KiB shards, with the
// plain files beside it for the comparison with plain onnxruntime-web.
await mkdir(join(out, "ext-plain"), { recursive: true });
await writeSyntheticModel(join(out, "ext-plain", "ext.onnx"), {
  bytes: 3 * 1024 * 1024 + 3 * 1024,
  external: true,
  externalFiles: 3,
});
await register(join(out, "ext-plain", "ext.onnx"), "ext", 1, "ext-v1", 256 * 1024);
// A model WebGPU loads but cannot run (MaxPool with ceil_mode): the backend trial run's case.
await mkdir(join(out, "pool-plain"), { recursive: true });
await writePoolCeilModel(join(out, "pool-plain", "pool.onnx"));
await register(join(out, "pool-plain", "pool.onnx"), "pool", 1, "pool-v1");
// The same network under another id, with a signed output policy: top-1, rounded to integers.
await packAndRegister(call, {
  publisherToken: publisher.token,
  signingKey: keys.privateJwk,
  registrationKey: server.ctx.keys.registration.publicJwk,
  modelPath: digits,
  id: "digits-policy",
  version: 1,
  outDir: join(out, "digits-policy"),
  shardSize: 64 * 1024,
  outputPolicy: { topK: 1, decimals: 0 },
});
// The same network as a traceable package (docs/TRACING.md): 64 marked slots. The publisher's
// trace key stays outside the served package.
await packAndRegister(call, {
  publisherToken: publisher.token,
  signingKey: keys.privateJwk,
  registrationKey: server.ctx.keys.registration.publicJwk,
  modelPath: digits,
  id: "digits-traced",
  version: 1,
  outDir: join(out, "digits-traced"),
  shardSize: 64 * 1024,
  trace: { slots: 64, keyOut: join(out, "digits-traced.trace-key.json") },
});
// A deliberately tampered copy of v1: one bit flipped in one shard.
await tamperedCopy(join(out, "digits-v1"), join(out, "digits-tampered"), 2, 500);

await writeFile(
  join(out, "env.json"),
  JSON.stringify({
    origin,
    licenseServer: server.url,
    admin,
    licensor,
    publisherKey: keys.publicJwk,
    licenseKeys: [server.ctx.keys.current.publicJwk, server.ctx.keys.next.publicJwk],
    digest,
  }),
);

const vite = await createServer({
  configFile: "vite.config.ts",
  server: { port, host: "127.0.0.1", strictPort: true },
});
await vite.listen();
console.log(`test pages on ${origin}, license server on ${server.url}`);
const stop = async () => {
  await vite.close();
  await server.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
