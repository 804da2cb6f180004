import { ModelVaultError } from "../core/errors.js";
import { checkModelId, checkModelVersion } from "../core/ids.js";
import { checkEcJwk } from "../core/jwk.js";
import { DEFAULT_SHARD_SIZE, MAX_SHARD_SIZE, MIN_SHARD_SIZE } from "../core/manifest.js";
import { DEFAULT_MIN_COUNT, type MonitoringPolicy, monitoringSchema } from "../core/monitoring.js";
import type { OutputPolicy } from "../core/output-policy.js";
import type { TraceOptions } from "./trace/trace-options.js";

export interface PackOptions extends TraceOptions {
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

/** Checks every option before any file is touched, so bad input leaves nothing behind. */
export function checkOptions(o: PackOptions) {
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
