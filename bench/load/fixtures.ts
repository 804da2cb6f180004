/**
 * The benchmark's models, app and servers: digits, a 64 MiB MatMul model and a ~90 MB
 * convolutional network; the benchmark app built by Vite from the packed tarball, as a user
 * builds theirs; a license server; each model packed, registered and granted, with its plain
 * .onnx beside it for the baseline. Everything served from one static server with the caching
 * headers a CDN would send (ETag, max-age) and cross-origin isolation for both pages.
 */
import { cp, link, mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { writeConvNet } from "../../models/conv-net.js";
import { writeSyntheticModel } from "../../models/synthetic.js";
import { REPO } from "../../scripts/pack-tarball.js";
import { apiCall, createPrincipal, packAndRegister } from "../../scripts/provision.js";
import type { EcJwk } from "../../src/core/jwk.js";
import { generateKeyPairJwk } from "../../src/pack/keygen.js";
import { bootstrapAdmin } from "../../src/server/bootstrap.js";
import { type RunningServer, startServer } from "../../src/server/start-server.js";
import { CROSS_ORIGIN_ISOLATION_HEADERS } from "../../src/vite/index.js";
import { createApp, packForConsumers, run } from "../../test/consumer/consumer-app.js";
import { type StaticServer, startStaticServer } from "../../test/helpers/static-server.js";

export interface BenchModel {
  id: string;
  name: string;
  /** URL of the plain .onnx, for the baseline. */
  plain: string;
  /** Its external-data files, fetched by onnxruntime-web itself (names relative to `plain`). */
  externalData: string[];
  input: string;
  dims: number[];
}

/** A model to serve: its .onnx and any external-data files beside it. */
export interface ModelSource {
  id: string;
  name: string;
  file: string;
  externalData?: string[];
  input: string;
  dims: number[];
  shardSize?: number;
  /** Packed traceable with this many slots (docs/TRACING.md). */
  traceSlots?: number;
}

const OUT = join(REPO, "bench/.out/models");

/** The load benchmark's models, generated once into bench/.out/models. */
export async function loadBenchModels(): Promise<ModelSource[]> {
  await mkdir(OUT, { recursive: true });
  const have = new Set(await readdir(OUT));
  if (!have.has("synthetic-64m.onnx"))
    await writeSyntheticModel(join(OUT, "synthetic-64m.onnx"), { bytes: 64 * 1024 * 1024 });
  if (!have.has("conv-net.onnx")) await writeConvNet(join(OUT, "conv-net.onnx"));
  return [
    {
      id: "digits",
      name: "digits (398 KiB MLP)",
      file: join(REPO, "models/digits/digits.onnx"),
      input: "pixels",
      dims: [1, 784],
    },
    {
      id: "synthetic-64m",
      name: "synthetic (64 MiB MatMul)",
      file: join(OUT, "synthetic-64m.onnx"),
      input: "x",
      dims: [1, 65536],
    },
    {
      id: "digits-traced",
      name: "digits, traceable (256 slots)",
      file: join(REPO, "models/digits/digits.onnx"),
      input: "pixels",
      dims: [1, 784],
      traceSlots: 256,
    },
    {
      id: "synthetic-64m-traced",
      name: "synthetic 64 MiB, traceable (256 slots)",
      file: join(OUT, "synthetic-64m.onnx"),
      input: "x",
      dims: [1, 65536],
      traceSlots: 256,
    },
    {
      id: "conv-net",
      name: "conv net (89 MiB, 13 convolutions)",
      file: join(OUT, "conv-net.onnx"),
      input: "x",
      dims: [1, 3, 64, 64],
    },
  ];
}

export interface BenchSetup {
  origin: string;
  models: BenchModel[];
  config: { licenseServer: string; credential: string; publisherKey: EcJwk };
  close(): Promise<void>;
}

export async function setUp(list: ModelSource[]): Promise<BenchSetup> {
  const tarball = await packForConsumers();
  const app = await createApp(tarball, { name: "bench-app", tools: ["vite"] });
  await rm(dirname(tarball.path), { recursive: true, force: true });
  await cp(join(REPO, "bench/load/app"), app, { recursive: true });
  const build = await run("npx", ["vite", "build"], { cwd: app });
  if (build.code !== 0) throw new Error(`vite build failed:\n${build.stderr}`);
  const dist = join(app, "dist");
  const files: StaticServer = await startStaticServer(dist, {
    ...CROSS_ORIGIN_ISOLATION_HEADERS,
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "public, max-age=3600",
  });
  const serverData = await mkdtemp(join(tmpdir(), "modelvault-bench-server-"));
  const license: RunningServer = await startServer({
    dataDir: serverData,
    port: 0,
    corsOrigins: [files.url],
    log: () => {},
    rateLimits: { perPrincipalPerMinute: 1_000_000 },
  });
  const admin = (await bootstrapAdmin(license.ctx))?.token as string;
  const call = apiCall(license.url);
  const keys = await generateKeyPairJwk("sig");
  const publisher = await createPrincipal(call, admin, "publisher", ["publisher"]);
  await call(admin, "POST", "/v1/admin/publisher-keys", { jwk: keys.publicJwk, principalId: publisher.id });
  const licensor = await createPrincipal(call, admin, "licensor", ["licensor"]);
  const client = await createPrincipal(call, admin, "bench client", ["client"]);
  for (const m of list) {
    const out = join(dist, "models", m.id);
    await packAndRegister(call, {
      publisherToken: publisher.token,
      signingKey: keys.privateJwk,
      registrationKey: license.ctx.keys.registration.publicJwk,
      modelPath: m.file,
      id: m.id,
      version: 1,
      outDir: out,
      ...(m.shardSize ? { shardSize: m.shardSize } : {}),
      ...(m.traceSlots
        ? { trace: { slots: m.traceSlots, keyOut: join(serverData, `${m.id}.trace-key.json`) } }
        : {}),
    });
    await rm(join(out, "content-key.jwe"));
    await rm(join(out, "trace-key.jwe"), { force: true });
    // Hard links: multi-GB models are served without a second copy on disk.
    await mkdir(join(dist, "plain", m.id), { recursive: true });
    for (const f of [m.file, ...(m.externalData ?? []).map((d) => join(dirname(m.file), d))])
      await link(f, join(dist, "plain", m.id, basename(f)));
    await call(licensor.token, "POST", "/v1/entitlements", {
      principalId: client.id,
      modelId: m.id,
      scopes: ["infer"],
      quota: 1e9,
      periodSeconds: 86400,
      licenseAllowance: 1e6,
      maxDevices: 10_000,
      licenseTtlSeconds: 900,
      offlineSeconds: 0,
      expiresAt: Math.floor(Date.now() / 1000) + 86400,
    });
  }
  return {
    origin: files.url,
    models: list.map((m) => ({
      id: m.id,
      name: m.name,
      plain: `/plain/${m.id}/${basename(m.file)}`,
      externalData: m.externalData ?? [],
      input: m.input,
      dims: m.dims,
    })),
    config: { licenseServer: license.url, credential: client.token, publisherKey: keys.publicJwk },
    close: async () => {
      await files.close();
      await license.close();
      await rm(app, { recursive: true, force: true });
      await rm(serverData, { recursive: true, force: true });
    },
  };
}
