/**
 * Traceable models for the server's tracing tests: a signed manifest with a `trace` section of
 * `slots` slots inside its graph file (dummy variant digests: registration and licensing never
 * read shards), its content key and trace key sealed to the server, and a registration helper.
 */
import { toBase64Url } from "../../src/core/bytes.js";
import { sealContentKey, TRACE_KEY_CTY } from "../../src/core/content-key-jwe.js";
import type { EcJwk } from "../../src/core/jwk.js";
import { MANIFEST_FORMAT, type Manifest } from "../../src/core/manifest.js";
import { signManifest } from "../../src/core/manifest-jws.js";
import { TRACE_SCHEME } from "../../src/core/tracing/trace-manifest.js";
import type { Harness } from "./harness.js";

const SLOT_BYTES = 256;
const random = (n: number) => crypto.getRandomValues(new Uint8Array(n));
const hex = (n: number) => Array.from(random(n), (b) => b.toString(16).padStart(2, "0")).join("");

/** A manifest of one 1 MiB graph file; with `slots`, that many float32 slots of 256 bytes in it. */
export function traceableManifest(id: string, version: number, slots?: number): Manifest {
  const size = 1024 * 1024;
  return {
    format: MANIFEST_FORMAT,
    model: { id, version },
    cipher: "A256GCM",
    contentKeyId: toBase64Url(random(16)),
    shardSize: size,
    size,
    files: [
      {
        role: "graph",
        location: "model.onnx",
        size,
        shards: [{ index: 0, size, sha256: hex(32), iv: toBase64Url(random(12)) }],
      },
    ],
    signature: { inputs: [], outputs: [{ name: "y", type: "float32", shape: [1] }] },
    ...(slots
      ? {
          trace: {
            scheme: TRACE_SCHEME,
            slots: Array.from({ length: slots }, (_, i) => ({
              file: "model.onnx",
              offset: 4096 + i * SLOT_BYTES,
              size: SLOT_BYTES,
              tensor: "weights",
              element: i * (SLOT_BYTES / 4),
              type: "float32" as const,
              delta: 0.001,
              variants: [
                { sha256: hex(32), iv: toBase64Url(random(12)) },
                { sha256: hex(32), iv: toBase64Url(random(12)) },
              ] as [{ sha256: string; iv: string }, { sha256: string; iv: string }],
            })),
          },
        }
      : {}),
    createdAt: new Date().toISOString(),
  };
}

export interface Package {
  manifest: Manifest;
  jws: string;
  contentKey: string;
  cek: Uint8Array;
  /** The trace secret and its sealed trace-key.jwe (traceable packages only). */
  secret: Uint8Array;
  traceKey: string;
}

/** Signs a manifest and seals a fresh content key and trace secret to the server. */
export async function seal(
  h: Harness,
  manifest: Manifest,
  signingKey: EcJwk,
  o: {
    secret?: Uint8Array;
    traceCty?: Parameters<typeof sealContentKey>[2];
    traceFor?: Partial<Manifest["model"]>;
  } = {},
): Promise<Package> {
  const recipient = (await h.call("GET", "/.well-known/jwks.json")).body.keys.find(
    (k: { use: string }) => k.use === "enc",
  );
  const cek = random(32);
  const secret = o.secret ?? random(32);
  const ids = {
    modelId: manifest.model.id,
    modelVersion: manifest.model.version,
    contentKeyId: manifest.contentKeyId,
  };
  return {
    manifest,
    jws: await signManifest(manifest, signingKey),
    cek,
    contentKey: await sealContentKey({ ...ids, key: cek }, recipient),
    secret,
    traceKey: await sealContentKey(
      {
        ...ids,
        ...(o.traceFor?.id !== undefined ? { modelId: o.traceFor.id } : {}),
        ...(o.traceFor?.version !== undefined ? { modelVersion: o.traceFor.version } : {}),
        key: secret,
      },
      recipient,
      o.traceCty ?? TRACE_KEY_CTY,
    ),
  };
}

/** POST /v1/models with the package's manifest and content key, and `traceKey` if given. */
export function register(h: Harness, token: string, p: Package, traceKey?: string) {
  return h.call("POST", "/v1/models", token, {
    manifest: p.jws,
    contentKey: p.contentKey,
    ...(traceKey !== undefined ? { traceKey } : {}),
  });
}
