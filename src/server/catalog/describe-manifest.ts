import { decodeJwt, decodeProtectedHeader } from "jose";

/**
 * What the catalog shows of a registered manifest (verified at registration, so decoded here
 * without verifying again): its publisher key, sizes, outputs and whether it is monitored.
 */
export function describeManifest(jws: string): {
  publisher_kid: string | null;
  size: number | null;
  files: number | null;
  shards: number | null;
  created_at: string | null;
  monitoring: boolean;
  output_policy: unknown;
} {
  const kid = decodeProtectedHeader(jws).kid;
  const m = decodeJwt(jws) as {
    size?: number;
    files?: { shards?: unknown[] }[];
    createdAt?: string;
    monitoring?: unknown;
    outputPolicy?: unknown;
  };
  return {
    publisher_kid: typeof kid === "string" ? kid : null,
    size: typeof m.size === "number" ? m.size : null,
    files: Array.isArray(m.files) ? m.files.length : null,
    shards: Array.isArray(m.files) ? m.files.reduce((n, f) => n + (f.shards?.length ?? 0), 0) : null,
    created_at: typeof m.createdAt === "string" ? m.createdAt : null,
    monitoring: m.monitoring !== undefined,
    output_policy: m.outputPolicy ?? null,
  };
}
