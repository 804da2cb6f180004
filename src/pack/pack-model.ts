import { mkdir, open, stat } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import { toBase64Url } from "../core/bytes.js";
import { mapLimit } from "../core/concurrency.js";
import { sealContentKey } from "../core/content-key-jwe.js";
import { ModelVaultError } from "../core/errors.js";
import { checkModelId, checkModelVersion } from "../core/ids.js";
import { checkEcJwk } from "../core/jwk.js";
import {
  DEFAULT_SHARD_SIZE,
  MANIFEST_FORMAT,
  MAX_SHARD_SIZE,
  type Manifest,
  type ManifestFile,
  MIN_SHARD_SIZE,
  parseManifest,
  shardContext,
} from "../core/manifest.js";
import { signManifest } from "../core/manifest-jws.js";
import {
  DEFAULT_MIN_COUNT,
  type MonitoringPolicy,
  monitoringProblem,
  monitoringSchema,
} from "../core/monitoring.js";
import { checkOutputPolicy, type OutputPolicy } from "../core/output-policy.js";
import { fileSource } from "./file-source.js";
import { writePublicFile, writeSecretFile } from "./key-files.js";
import { ProtobufError } from "./onnx/protobuf-read.js";
import { type OnnxModelInfo, readModelInfo } from "./onnx/read-model-info.js";
import { SealPool } from "./seal-pool.js";
import { StagedOutput } from "./staged-output.js";

export interface PackOptions {
  /** Path of the .onnx graph file; external-data files are found beside it. */
  modelPath: string;
  id: string;
  version: number | string;
  /** Publisher's private ES256 JWK. */
  signingKey: unknown;
  /** Public ECDH P-256 JWK the content key is sealed to (the license server's registration key). */
  recipient?: unknown;
  /** Development only: write the raw content key here (0600) instead of sealing it. */
  insecureKeyOut?: string;
  outDir: string;
  shardSize?: number;
  /** Signed into the manifest; the runtime applies it to every result (docs/FORMAT.md, "Output policy"). */
  outputPolicy?: OutputPolicy;
  /** Signed validity, seconds since the epoch: after it, servers and runtimes refuse the manifest. */
  expires?: number;
  /**
   * Output monitoring, signed into the manifest (docs/FORMAT.md, "Monitoring policy"): the
   * runtime reports aggregate counts of these outputs; `minCount` defaults to 20.
   */
  monitoring?: Omit<MonitoringPolicy, "minCount"> & { minCount?: number };
  force?: boolean;
  /** Worker threads sealing shards; default min(4, cores). */
  threads?: number;
  onProgress?: (event: { location: string; shard: number; shards: number; bytes: number }) => void;
}

export interface PackResult {
  manifest: Manifest;
  outDir: string;
  files: { manifest: string; contentKey?: string; insecureKey?: string };
}

/** Checks every option before any file is touched, so bad input leaves nothing behind. */
function checkOptions(o: PackOptions) {
  const id = checkModelId(o.id);
  const version = checkModelVersion(o.version);
  const shardSize = o.shardSize ?? DEFAULT_SHARD_SIZE;
  if (!Number.isInteger(shardSize) || shardSize < MIN_SHARD_SIZE || shardSize > MAX_SHARD_SIZE) {
    throw new ModelVaultError(
      "ERR_PACK_SHARD_SIZE_OUT_OF_RANGE",
      `shard size must be an integer in [${MIN_SHARD_SIZE}, ${MAX_SHARD_SIZE}]`,
    );
  }
  const signingKey = checkEcJwk(o.signingKey, true, "signing key", "sig");
  const recipient =
    o.recipient === undefined ? undefined : checkEcJwk(o.recipient, false, "recipient key", "enc");
  if (!recipient && !o.insecureKeyOut) {
    throw new ModelVaultError(
      "ERR_PACK_RECIPIENT_REQUIRED",
      "give --recipient (or --insecure-key-out for development)",
    );
  }
  const { topK, decimals } = o.outputPolicy ?? {};
  if (topK !== undefined && (!Number.isSafeInteger(topK) || topK < 1))
    throw new ModelVaultError("ERR_PACK_OUTPUT_POLICY_INVALID", "top-k must be an integer >= 1", {
      path: "topK",
    });
  if (decimals !== undefined && (!Number.isInteger(decimals) || decimals < 0 || decimals > 15))
    throw new ModelVaultError("ERR_PACK_OUTPUT_POLICY_INVALID", "decimals must be an integer in [0, 15]", {
      path: "decimals",
    });
  const outputPolicy =
    topK === undefined && decimals === undefined
      ? undefined
      : { ...(topK !== undefined ? { topK } : {}), ...(decimals !== undefined ? { decimals } : {}) };
  if (o.expires !== undefined && (!Number.isSafeInteger(o.expires) || o.expires * 1000 <= Date.now()))
    throw new ModelVaultError(
      "ERR_PACK_EXPIRES_INVALID",
      "expires must be a time in the future (seconds since the epoch)",
    );
  const monitoring = o.monitoring === undefined ? undefined : checkMonitoring(o.monitoring);
  return { id, version, shardSize, signingKey, recipient, outputPolicy, expires: o.expires, monitoring };
}

function checkMonitoring(value: unknown): MonitoringPolicy {
  const withDefault =
    value && typeof value === "object" && !("minCount" in value)
      ? { ...value, minCount: DEFAULT_MIN_COUNT }
      : value;
  const r = monitoringSchema.safeParse(withDefault);
  if (!r.success) {
    const issue = r.error.issues[0];
    const path = issue?.path.join(".") ?? "";
    throw new ModelVaultError("ERR_PACK_MONITORING_INVALID", `monitoring "${path}": ${issue?.message}`, {
      path,
    });
  }
  return r.data;
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
 */
export async function packModel(o: PackOptions): Promise<PackResult> {
  const { id, version, shardSize, signingKey, recipient, outputPolicy, expires, monitoring } =
    checkOptions(o);
  const info = await readInfo(o.modelPath);
  checkOutputPolicy(outputPolicy, info.outputs);
  const problem = monitoring && monitoringProblem(monitoring, info.outputs);
  if (problem)
    throw new ModelVaultError("ERR_PACK_MONITORING_INVALID", `monitoring "${problem[0]}": ${problem[1]}`, {
      path: problem[0],
    });
  const external = await externalFiles(o.modelPath, info);
  const staged = await StagedOutput.create(o.outDir, o.force ?? false);
  try {
    // The packer is the one place the raw content key exists: it must be sealed to the recipient.
    const raw = crypto.getRandomValues(new Uint8Array(32));
    const contentKeyId = toBase64Url(crypto.getRandomValues(new Uint8Array(16)));
    const sources = [
      { path: o.modelPath, location: graphLocation(o.modelPath), role: "graph" as const },
      ...external.map((e) => ({ ...e, role: "external-data" as const })),
    ];
    const partial = { model: { id, version }, shardSize };
    const files: ManifestFile[] = [];
    await mkdir(join(staged.path, "shards"));
    const pool = new SealPool(raw, shardSize, o.threads);
    try {
      for (const source of sources) {
        const context = {
          ...partial,
          pool,
          dir: staged.path,
          concurrency: (o.threads ?? 4) * 2,
          onProgress: o.onProgress,
        };
        files.push(await sealFile(source, context));
      }
    } finally {
      await pool.close();
    }
    const manifest = parseManifest({
      format: MANIFEST_FORMAT,
      model: { id, version },
      cipher: "A256GCM",
      contentKeyId,
      shardSize,
      size: files.reduce((n, f) => n + f.size, 0),
      files,
      signature: { inputs: info.inputs, outputs: info.outputs },
      ...(outputPolicy ? { outputPolicy } : {}),
      ...(monitoring ? { monitoring } : {}),
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
    if (o.insecureKeyOut) {
      const jwk = {
        kty: "oct",
        alg: "A256GCM",
        kid: contentKeyId,
        k: toBase64Url(raw),
        model: { id, version },
      };
      await writeSecretFile(o.insecureKeyOut, `${JSON.stringify(jwk, null, 2)}\n`, o.force ?? false);
      result.files.insecureKey = o.insecureKeyOut;
    }
    raw.fill(0);
    await staged.commit();
    return result;
  } catch (e) {
    await staged.discard();
    throw e;
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
    });
    shard.sha256 = sealed.sha256;
    shard.iv = toBase64Url(sealed.iv);
    done += shard.size;
    c.onProgress?.({ location: source.location, shard: shard.index, shards: count, bytes: done });
  });
  return entry;
}
