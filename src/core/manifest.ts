import { z } from "zod";
import { ModelVaultError } from "./errors.js";
import { checkModelId, checkModelVersion } from "./ids.js";
import { monitoringProblem, monitoringSchema } from "./monitoring.js";
import type { ShardContext } from "./shard-aad.js";
import { IV_BYTES, TAG_BYTES } from "./shard-cipher.js";
import { traceProblem, traceSchema } from "./tracing/trace-manifest.js";

// No code generation: pages that load the runtime run under a strict CSP without 'unsafe-eval',
// and zod's JIT probe (new Function) would be reported there as a violation.
z.config({ jitless: true });

export const MANIFEST_FORMAT = "modelvault/1";
export const MIN_SHARD_SIZE = 64 * 1024;
export const MAX_SHARD_SIZE = 256 * 1024 * 1024;
export const DEFAULT_SHARD_SIZE = 4 * 1024 * 1024;

/** ONNX TensorProto.DataType names we carry in the signature (docs/FORMAT.md). */
export const ELEMENT_TYPES = [
  "float32",
  "uint8",
  "int8",
  "uint16",
  "int16",
  "int32",
  "int64",
  "string",
  "bool",
  "float16",
  "float64",
  "uint32",
  "uint64",
  "bfloat16",
  "unknown",
] as const;

const safeInt = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const hex256 = z.string().regex(/^[0-9a-f]{64}$/, "lowercase hex SHA-256");
const ivB64 = z.string().regex(/^[A-Za-z0-9_-]{16}$/, `${IV_BYTES}-byte base64url IV`);
// External-data locations are relative names inside the model folder: no "..", no absolute paths.
const location = z
  .string()
  .min(1)
  .max(255)
  .regex(/^(?!\.)[A-Za-z0-9._-]+(\/(?!\.)[A-Za-z0-9._-]+)*$/, "relative path of [A-Za-z0-9._-] segments");

const tensorInfo = z.strictObject({
  name: z.string().min(1).max(256),
  type: z.enum(ELEMENT_TYPES),
  shape: z.array(z.union([safeInt, z.string().max(128), z.null()])).max(16),
});

const shardEntry = z.strictObject({
  index: safeInt,
  size: safeInt,
  sha256: hex256,
  iv: ivB64,
});

const fileEntry = z.strictObject({
  role: z.enum(["graph", "external-data"]),
  location,
  size: safeInt,
  shards: z.array(shardEntry).min(1).max(65536),
});

const manifestSchema = z.strictObject({
  format: z.literal(MANIFEST_FORMAT),
  model: z.strictObject({ id: z.string(), version: z.number() }),
  cipher: z.literal("A256GCM"),
  contentKeyId: z.string().regex(/^[A-Za-z0-9_-]{22}$/, "16-byte base64url id"),
  shardSize: safeInt.min(MIN_SHARD_SIZE).max(MAX_SHARD_SIZE),
  size: safeInt,
  files: z.array(fileEntry).min(1).max(1024),
  signature: z.strictObject({
    inputs: z.array(tensorInfo).max(256),
    outputs: z.array(tensorInfo).min(1).max(256),
  }),
  outputPolicy: z
    .strictObject({ topK: safeInt.min(1).optional(), decimals: safeInt.max(15).optional() })
    .optional(),
  /** Output monitoring (docs/FORMAT.md, "Monitoring policy"): aggregates only, signed with the rest. */
  monitoring: monitoringSchema.optional(),
  /** Traceable packages only (docs/TRACING.md): the marked slots and their sealed variants. */
  trace: traceSchema.optional(),
  createdAt: z.iso.datetime(),
  /**
   * Seconds since the epoch after which the manifest is no longer valid (TUF freeze): a mirror
   * cannot keep serving it for ever. Optional; the publisher signs a newer version before it.
   */
  expires: safeInt.optional(),
});

/** A verified v1 manifest (see docs/FORMAT.md). */
export type Manifest = z.infer<typeof manifestSchema>;
export type ManifestFile = Manifest["files"][number];
export type ManifestShard = ManifestFile["shards"][number];
export type TensorInfo = z.infer<typeof tensorInfo>;

/**
 * Parses and checks a manifest payload: the schema, then the invariants a schema cannot say
 * (shard indices in order, sizes that add up, every shard but the last exactly shardSize).
 */
export function parseManifest(value: unknown): Manifest {
  const result = manifestSchema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const path = issue?.path.join(".") ?? "";
    throw new ModelVaultError("ERR_MANIFEST_MALFORMED", `manifest field "${path}": ${issue?.message}`, {
      path,
    });
  }
  const m = result.data;
  checkModelId(m.model.id);
  checkModelVersion(m.model.version);
  const fail = (path: string, why: string): never => {
    throw new ModelVaultError("ERR_MANIFEST_MALFORMED", `manifest field "${path}": ${why}`, { path });
  };
  if (m.files[0]?.role !== "graph" || m.files.some((f, i) => i > 0 && f.role !== "external-data")) {
    fail("files", "the first file must be the graph and the others external data");
  }
  const locations = new Set<string>();
  let total = 0;
  m.files.forEach((file, f) => {
    if (locations.has(file.location)) fail(`files.${f}.location`, "duplicate location");
    locations.add(file.location);
    let fileTotal = 0;
    file.shards.forEach((shard, i) => {
      if (shard.index !== i) fail(`files.${f}.shards.${i}.index`, "shards must be listed in index order");
      const last = i === file.shards.length - 1;
      if (last ? shard.size < 1 || shard.size > m.shardSize : shard.size !== m.shardSize) {
        fail(`files.${f}.shards.${i}.size`, "every shard but the last is exactly shardSize");
      }
      fileTotal += shard.size;
    });
    if (fileTotal !== file.size) fail(`files.${f}.size`, "does not equal the sum of its shard sizes");
    total += file.size;
  });
  if (total !== m.size) fail("size", "does not equal the sum of file sizes");
  const monitoring = m.monitoring && monitoringProblem(m.monitoring, m.signature.outputs);
  if (monitoring) fail(`monitoring.${monitoring[0]}`, monitoring[1]);
  const trace = m.trace && traceProblem(m.trace, m.files);
  if (trace) fail(trace[0], trace[1]);
  return m;
}

/** The AAD context of shard `index` of `file`. */
export function shardContext(m: Manifest, file: ManifestFile, index: number): ShardContext {
  const shard = file.shards[index];
  if (!shard) throw new RangeError(`no shard ${index} in ${file.location}`);
  return {
    modelId: m.model.id,
    modelVersion: m.model.version,
    location: file.location,
    fileSize: file.size,
    shardIndex: index,
    shardCount: file.shards.length,
    plaintextSize: shard.size,
  };
}

/** Ciphertext length of a shard on disk: plaintext plus the 16-byte tag. */
export function shardCiphertextSize(shard: ManifestShard): number {
  return shard.size + TAG_BYTES;
}

/** Where a shard lives relative to the manifest: `shards/<sha256>.bin`. */
export function shardPath(shard: ManifestShard): string {
  return `shards/${shard.sha256}.bin`;
}
