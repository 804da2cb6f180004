/**
 * Everything the browser tests talk to, on loopback: the Vite dev server (pages, worker, the
 * packed models under /test/browser/fixtures-out/) and a real license server on SQLite with a
 * publisher, a licensor and clients provisioned. Writes fixtures-out/env.json for the specs.
 */
import { cp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createServer } from "vite";
import { manifestDigest } from "../../src/core/digest.js";
import { generateKeyPairJwk } from "../../src/pack/keygen.js";
import { packModel } from "../../src/pack/pack-model.js";
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
const call = async (token: string, method: string, path: string, body?: unknown) => {
  const r = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const json = (await r.json()) as Record<string, string>;
  if (!r.ok) throw new Error(`${path}: ${JSON.stringify(json)}`);
  return json;
};
const principal = async (name: string, roles: string[]) => {
  const p = await call(admin, "POST", "/v1/admin/principals", { name, roles });
  return {
    id: p.id as string,
    token: (await call(admin, "POST", `/v1/admin/principals/${p.id}/api-keys`)).token as string,
  };
};
const publisher = await principal("publisher", ["publisher"]);
const licensor = await principal("licensor", ["licensor"]);
const keys = await generateKeyPairJwk("sig");
await call(admin, "POST", "/v1/admin/publisher-keys", { jwk: keys.publicJwk });
const registration = server.ctx.keys.registration.publicJwk;
for (const version of [1, 2]) {
  const dir = join(out, `digits-v${version}`);
  await packModel({
    modelPath: digits,
    id: "digits",
    version,
    signingKey: keys.privateJwk,
    recipient: registration,
    outDir: dir,
    force: true,
    shardSize: 64 * 1024,
  });
  await call(publisher.token, "POST", "/v1/models", {
    manifest: await readFile(join(dir, "manifest.jws"), "utf8"),
    contentKey: await readFile(join(dir, "content-key.jwe"), "utf8"),
  });
}
// Benchmarks also want a 64 MB synthetic model, packed and registered, with its plain file beside it.
if (process.env.MODELVAULT_BENCH_SYNTHETIC) {
  const { writeSyntheticModel } = await import("../../models/synthetic.js");
  const plain = join(out, "synthetic-64m.onnx");
  await writeSyntheticModel(plain, { bytes: 64 * 1024 * 1024 });
  const dir = join(out, "synthetic-64m");
  await packModel({
    modelPath: plain,
    id: "synthetic-64m",
    version: 1,
    signingKey: keys.privateJwk,
    recipient: registration,
    outDir: dir,
    force: true,
  });
  await call(publisher.token, "POST", "/v1/models", {
    manifest: await readFile(join(dir, "manifest.jws"), "utf8"),
    contentKey: await readFile(join(dir, "content-key.jwe"), "utf8"),
  });
}

// A deliberately tampered copy of v1: one bit flipped in one shard.
await rm(join(out, "digits-tampered"), { recursive: true, force: true });
await cp(join(out, "digits-v1"), join(out, "digits-tampered"), { recursive: true });
const manifest = await readFile(join(out, "digits-v1", "manifest.jws"), "utf8");
const firstShard = JSON.parse(Buffer.from(manifest.split(".")[1] as string, "base64url").toString()).files[0]
  .shards[2].sha256;
const shardFile = join(out, "digits-tampered", "shards", `${firstShard}.bin`);
const bytes = await readFile(shardFile);
bytes[500] = (bytes[500] as number) ^ 1;
await writeFile(shardFile, bytes);

await writeFile(
  join(out, "env.json"),
  JSON.stringify({
    origin,
    licenseServer: server.url,
    admin,
    licensor,
    publisherKey: keys.publicJwk,
    digest: await manifestDigest(manifest),
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
