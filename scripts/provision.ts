/**
 * Provisioning a license server over its API, shared by `npm start`, the browser tests' server
 * and the benchmarks: principals with API keys, and packing + registering a model.
 */
import { cp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { manifestDigest } from "../src/core/digest.js";
import type { EcJwk } from "../src/core/jwk.js";
import { type PackOptions, packModel } from "../src/pack/pack-model.js";

export type ApiCall = (
  token: string,
  method: string,
  path: string,
  body?: unknown,
) => Promise<Record<string, string>>;

/** A JSON API caller for one server; throws with the server's error body on any non-2xx. */
export function apiCall(serverUrl: string): ApiCall {
  return async (token, method, path, body) => {
    const r = await fetch(`${serverUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const json = (await r.json()) as Record<string, string>;
    if (!r.ok) throw new Error(`${method} ${path}: ${JSON.stringify(json)}`);
    return json;
  };
}

/** Creates a principal with roles and an API key for it (admin credential). */
export async function createPrincipal(call: ApiCall, admin: string, name: string, roles: string[]) {
  const p = await call(admin, "POST", "/v1/admin/principals", { name, roles });
  const key = await call(admin, "POST", `/v1/admin/principals/${p.id}/api-keys`);
  return { id: p.id as string, token: key.token as string };
}

/** Packs a model sealed to the server's registration key and registers it as `publisherToken`. */
export async function packAndRegister(
  call: ApiCall,
  o: {
    publisherToken: string;
    signingKey: EcJwk;
    registrationKey: EcJwk;
    modelPath: string;
    id: string;
    version: number;
    outDir: string;
    shardSize?: number;
    outputPolicy?: { topK?: number; decimals?: number };
    monitoring?: PackOptions["monitoring"];
    /** A traceable package (docs/TRACING.md): slots and where the publisher's trace key goes. */
    trace?: { slots: number; keyOut: string; strength?: number };
  },
): Promise<{ manifest: string; digest: string }> {
  await packModel({
    modelPath: o.modelPath,
    id: o.id,
    version: o.version,
    signingKey: o.signingKey,
    recipient: o.registrationKey,
    outDir: o.outDir,
    force: true,
    ...(o.shardSize ? { shardSize: o.shardSize } : {}),
    ...(o.outputPolicy ? { outputPolicy: o.outputPolicy } : {}),
    ...(o.monitoring ? { monitoring: o.monitoring } : {}),
    ...(o.trace
      ? {
          traceSlots: o.trace.slots,
          traceKeyOut: o.trace.keyOut,
          ...(o.trace.strength !== undefined ? { traceStrength: o.trace.strength } : {}),
        }
      : {}),
  });
  const manifest = await readFile(join(o.outDir, "manifest.jws"), "utf8");
  const contentKey = await readFile(join(o.outDir, "content-key.jwe"), "utf8");
  const traceKey = o.trace ? await readFile(join(o.outDir, "trace-key.jwe"), "utf8") : undefined;
  await call(o.publisherToken, "POST", "/v1/models", {
    manifest,
    contentKey,
    ...(traceKey ? { traceKey } : {}),
  });
  return { manifest, digest: await manifestDigest(manifest) };
}

/** Copies a packed model and flips one bit in one graph shard: a deliberately tampered copy. */
export async function tamperedCopy(
  from: string,
  to: string,
  shardIndex: number,
  byte: number,
): Promise<void> {
  await rm(to, { recursive: true, force: true });
  await cp(from, to, { recursive: true });
  const manifest = await readFile(join(from, "manifest.jws"), "utf8");
  const claims = JSON.parse(Buffer.from(manifest.split(".")[1] as string, "base64url").toString());
  const file = join(to, "shards", `${claims.files[0].shards[shardIndex].sha256}.bin`);
  const bytes = await readFile(file);
  bytes[byte] = (bytes[byte] as number) ^ 1;
  await writeFile(file, bytes);
}
