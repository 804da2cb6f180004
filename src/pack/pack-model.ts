import { mkdir, open, rm, stat } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import { toBase64Url } from "../core/bytes.js";
import { mapLimit } from "../core/concurrency.js";
import { sealContentKey } from "../core/content-key-jwe.js";
import { ModelVaultError } from "../core/errors.js";
import {
  MANIFEST_FORMAT,
  type Manifest,
  type ManifestFile,
  parseManifest,
  shardContext,
} from "../core/manifest.js";
import { signManifest } from "../core/manifest-jws.js";
import { monitoringProblem } from "../core/monitoring.js";
import { checkOutputPolicy } from "../core/output-policy.js";
import { fileSource } from "./file-source.js";
import { writePublicFile, writeSecretFile } from "./key-files.js";
import { ProtobufError } from "./onnx/protobuf-read.js";
import { type OnnxModelInfo, readModelInfo } from "./onnx/read-model-info.js";
import { checkOptions, type PackOptions } from "./pack-options.js";
import { SealPool } from "./seal-pool.js";
import { StagedOutput } from "./staged-output.js";
import { type PackTraceSummary, prepareTrace, traceSummary, zeroRanges } from "./trace/pack-trace.js";
import type { TracePlan } from "./trace/plan-trace.js";
import { sealVariants } from "./trace/seal-variants.js";
import { sealTraceKey, traceKeyJson } from "./trace/trace-key.js";
import { checkTraceOptions } from "./trace/trace-options.js";

export type { PackOptions } from "./pack-options.js";

export interface PackResult {
  manifest: Manifest;
  outDir: string;
  files: {
    manifest: string;
    contentKey?: string;
    insecureKey?: string;
    traceKey?: string;
    traceKeyOut?: string;
  };
  /** Traceable packages only: the slots, what they cost in storage and what the quality guard measured. */
  trace?: PackTraceSummary;
}

async function openInput(path: string) {
  try {
    const file = await open(path, "r");
    const { size } = await file.stat();
    return { file, size };
  } catch {
    throw new ModelVaultError("ERR_PACK_INPUT_NOT_FOUND", `cannot read ${path}`, { path });
  }
}

async function readInfo(path: string): Promise<OnnxModelInfo> {
  const { file, size } = await openInput(path);
  try {
    return await readModelInfo(fileSource(file, size));
  } catch (e) {
    if (e instanceof ProtobufError || e instanceof TypeError) {
      throw new ModelVaultError("ERR_PACK_NOT_ONNX", `${path} is not an ONNX model: ${e.message}`, { path });
    }
    throw e;
  } finally {
    await file.close();
  }
}

/** Resolves external-data locations inside the model's folder and checks they hold enough bytes. */
async function externalFiles(modelPath: string, info: OnnxModelInfo) {
  const root = resolve(dirname(modelPath));
  return Promise.all(
    info.externalData.map(async ({ location, requiredBytes }) => {
      const path = resolve(root, location);
      if (!/^[A-Za-z0-9._/-]+$/.test(location) || location.startsWith("/") || !path.startsWith(root + sep)) {
        throw new ModelVaultError(
          "ERR_PACK_EXTERNAL_DATA_INVALID",
          `external-data location "${location}" is not inside the model folder`,
        );
      }
      const size = await stat(path).then(
        (s) => s.size,
        () => {
          throw new ModelVaultError("ERR_PACK_INPUT_NOT_FOUND", `external-data file ${location} not found`, {
            path: location,
          });
        },
      );
      if (!Number.isFinite(requiredBytes) || size < requiredBytes || size === 0) {
        throw new ModelVaultError(
          "ERR_PACK_EXTERNAL_DATA_INVALID",
          `external-data file ${location} is shorter than the graph needs`,
        );
      }
      return { path, location };
    }),
  );
}

/**
 * Packs an ONNX model into `outDir`: sealed shards named by their SHA-256, a signed manifest and
 * the content key sealed to the recipient. Streams each file through one reused buffer per
 * worker, so memory stays flat whatever the model's size. Nothing appears at `outDir` unless
 * everything succeeded.
 *
 * With `traceSlots` the package is traceable (docs/TRACING.md): the slots are sealed as zeros in
 * the common shards and in two marked variants each under their own keys, the manifest lists
 * them, trace-key.jwe seals the trace secret to the recipient and `traceKeyOut` keeps the
 * publisher's copy; the quality guard runs first and may refuse (ERR_PACK_TRACE_TOLERANCE).
 *
 * @example
 * const r = await packModel({ modelPath: "model.onnx", id: "m", version: 1, signingKey, recipient,
 *   outDir: "dist/m", traceSlots: 256, traceKeyOut: "keys/m-1.trace.json" });
 * console.log(r.trace?.quality);
 */
export async function packModel(o: PackOptions): Promise<PackResult> {
  const { id, version, shardSize, signingKey, recipient, outputPolicy, expires, monitoring } =
    checkOptions(o);
  const traceSettings = await checkTraceOptions(o);
  const info = await readInfo(o.modelPath);
  checkOutputPolicy(outputPolicy, info.outputs);
  const problem = monitoring && monitoringProblem(monitoring, info.outputs);
  if (problem)
    throw new ModelVaultError("ERR_PACK_MONITORING_INVALID", `monitoring "${problem[0]}": ${problem[1]}`, {
      path: problem[0],
    });
  const external = await externalFiles(o.modelPath, info);
  const sources = [
    { path: o.modelPath, location: graphLocation(o.modelPath), role: "graph" as const },
    ...external.map((e) => ({ ...e, role: "external-data" as const })),
  ];
  // Slots, secret and quality guard come before the output folder: a refusal leaves nothing.
  const trace = traceSettings && (await prepareTrace(traceSettings, sources, info.inputs));
  const staged = await StagedOutput.create(o.outDir, o.force ?? false).catch((e) => {
    trace?.plan.dispose();
    throw e;
  });
  // The packer is the one place the raw content key exists: it must be sealed to the recipient.
  const raw = crypto.getRandomValues(new Uint8Array(32));
  const outside: string[] = [];
  try {
    const contentKeyId = toBase64Url(crypto.getRandomValues(new Uint8Array(16)));
    const model = { id, version };
    const files: ManifestFile[] = [];
    await mkdir(join(staged.path, "shards"));
    const pool = new SealPool(raw, shardSize, o.threads);
    try {
      for (const source of sources) {
        const context = {
          model,
          shardSize,
          pool,
          dir: staged.path,
          concurrency: (o.threads ?? 4) * 2,
          onProgress: o.onProgress,
          trace: trace?.plan,
        };
        files.push(await sealFile(source, context));
      }
    } finally {
      await pool.close();
    }
    const variants =
      trace && (await sealVariants(trace.plan, model, trace.sources, join(staged.path, "shards")));
    const manifest = parseManifest({
      format: MANIFEST_FORMAT,
      model,
      cipher: "A256GCM",
      contentKeyId,
      shardSize,
      size: files.reduce((n, f) => n + f.size, 0),
      files,
      signature: { inputs: info.inputs, outputs: info.outputs },
      ...(outputPolicy ? { outputPolicy } : {}),
      ...(monitoring ? { monitoring } : {}),
      ...(variants ? { trace: variants.trace } : {}),
      createdAt: new Date().toISOString(),
      ...(expires !== undefined ? { expires } : {}),
    });
    await writePublicFile(join(staged.path, "manifest.jws"), await signManifest(manifest, signingKey));
    const result: PackResult = {
      manifest,
      outDir: staged.finalPath,
      files: { manifest: join(staged.finalPath, "manifest.jws") },
    };
    if (recipient) {
      const jwe = await sealContentKey(
        { modelId: id, modelVersion: version, contentKeyId, key: raw },
        recipient,
      );
      await writePublicFile(join(staged.path, "content-key.jwe"), `${jwe}\n`);
      result.files.contentKey = join(staged.finalPath, "content-key.jwe");
    }
    if (recipient && trace) {
      const jwe = await sealTraceKey(trace.plan.secret, model, contentKeyId, recipient);
      await writePublicFile(join(staged.path, "trace-key.jwe"), `${jwe}\n`);
      result.files.traceKey = join(staged.finalPath, "trace-key.jwe");
    }
    if (o.insecureKeyOut) {
      const jwk = { kty: "oct", alg: "A256GCM", kid: contentKeyId, k: toBase64Url(raw), model };
      await writeSecretFile(o.insecureKeyOut, `${JSON.stringify(jwk, null, 2)}\n`, o.force ?? false);
      outside.push(o.insecureKeyOut);
      result.files.insecureKey = o.insecureKeyOut;
    }
    if (trace && variants) {
      await writeSecretFile(
        trace.plan.settings.keyOut,
        traceKeyJson(trace.plan.secret, model, contentKeyId),
        o.force ?? false,
      );
      outside.push(trace.plan.settings.keyOut);
      result.files.traceKeyOut = trace.plan.settings.keyOut;
      result.trace = traceSummary(trace.plan, trace.quality, variants.bytes);
    }
    await staged.commit();
    return result;
  } catch (e) {
    await staged.discard();
    await Promise.all(outside.map((path) => rm(path, { force: true })));
    throw e;
  } finally {
    raw.fill(0);
    trace?.plan.dispose();
  }
}

function graphLocation(modelPath: string): string {
  const name = modelPath.split(/[\\/]/).pop() ?? "model.onnx";
  return /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name) ? name : "model.onnx";
}

interface SealContext {
  model: { id: string; version: number };
  shardSize: number;
  pool: SealPool;
  dir: string;
  concurrency: number;
  onProgress: PackOptions["onProgress"];
  /** A traceable package's slots: sealed as zeros in the common shards. */
  trace: TracePlan | undefined;
}

async function sealFile(
  source: { path: string; location: string; role: "graph" | "external-data" },
  c: SealContext,
): Promise<ManifestFile> {
  const { file, size } = await openInput(source.path);
  await file.close();
  if (size === 0) throw new ModelVaultError("ERR_PACK_NOT_ONNX", `${source.location} is empty`);
  const count = Math.ceil(size / c.shardSize);
  const entry: ManifestFile = {
    role: source.role,
    location: source.location,
    size,
    shards: Array.from({ length: count }, (_, index) => ({
      index,
      size: Math.min(c.shardSize, size - index * c.shardSize),
      sha256: "",
      iv: "",
    })),
  };
  const manifestView = { model: c.model, files: [entry] } as unknown as Manifest;
  let done = 0;
  await mapLimit(entry.shards, c.concurrency, async (shard) => {
    const sealed = await c.pool.seal({
      path: source.path,
      offset: shard.index * c.shardSize,
      ctx: shardContext(manifestView, entry, shard.index),
      shardDir: join(c.dir, "shards"),
      zero: zeroRanges(c.trace, source.location, shard.index * c.shardSize, shard.size),
    });
    shard.sha256 = sealed.sha256;
    shard.iv = toBase64Url(sealed.iv);
    done += shard.size;
    c.onProgress?.({ location: source.location, shard: shard.index, shards: count, bytes: done });
  });
  return entry;
}
