import { manifestDigest } from "../src/core/digest.js";
import { isModelVaultError, ModelVaultError } from "../src/core/errors.js";
import { type EcJwk, jwkThumbprint } from "../src/core/jwk.js";
import type { Manifest } from "../src/core/manifest.js";
import { MAX_MANIFEST_BYTES, verifyManifest } from "../src/core/manifest-jws.js";
import { checkOutputPolicy } from "../src/core/output-policy.js";
import type { ExpectedModel, RetryOptions } from "../src/core/worker-protocol.js";
import { watchDownload } from "./download-watchdog.js";
import { withRetry } from "./retry.js";
import type { Storage } from "./storage.js";

/** A manifest that verified under a pinned key and is the model the app asked for. */
export interface TrustedManifest {
  manifest: Manifest;
  jws: string;
  digest: string;
  publisherKid: string;
  fromCache: boolean;
}

const tooLarge = () =>
  new ModelVaultError("ERR_MANIFEST_TOO_LARGE", `manifest exceeds ${MAX_MANIFEST_BYTES} bytes`);

/**
 * Reads a manifest response with the size limit applied while it streams: never more than
 * 1 MiB is held, whatever the server sends or claims (a declared larger length is refused
 * before reading, an endless body is cut at the limit).
 */
export async function readBounded(res: Response, onChunk?: (bytes: number) => void): Promise<string> {
  if (Number(res.headers.get("content-length") ?? 0) > MAX_MANIFEST_BYTES) {
    await res.body?.cancel().catch(() => undefined);
    throw tooLarge();
  }
  const reader = res.body?.getReader();
  if (!reader) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    onChunk?.(value.byteLength);
    if (size > MAX_MANIFEST_BYTES) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge();
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) {
    bytes.set(c, offset);
    offset += c.byteLength;
  }
  return new TextDecoder().decode(bytes);
}

async function download(url: URL, retry: RetryOptions, signal?: AbortSignal): Promise<string> {
  return withRetry(
    async () => {
      const watchdog = watchDownload("manifest", retry, signal);
      try {
        const res = await fetch(url, { signal: watchdog.signal, cache: "no-store" });
        if (!res.ok) {
          await res.body?.cancel().catch(() => undefined);
          throw new ModelVaultError(
            res.status === 404 ? "ERR_MANIFEST_MALFORMED" : "ERR_NETWORK",
            `manifest: HTTP ${res.status}`,
          );
        }
        return await readBounded(res, watchdog.received);
      } catch (e) {
        throw watchdog.failure(e);
      } finally {
        watchdog.dispose();
      }
    },
    { ...retry, attempts: Math.min(2, retry.attempts) },
    signal,
  );
}

/** Refuses a manifest that is not the model the app expects (a mirror serving another model its publisher signed). */
export function checkExpected(manifest: Manifest, expected: ExpectedModel | undefined): void {
  if (!expected) return;
  const { id, version } = manifest.model;
  if (id !== expected.modelId || version < (expected.minVersion ?? 1)) {
    throw new ModelVaultError(
      "ERR_MODEL_MISMATCH",
      `the manifest is ${id} v${version}; expected ${expected.modelId}${expected.minVersion ? ` v${expected.minVersion} or later` : ""}`,
      { modelId: id, version, expected: expected.modelId, minVersion: expected.minVersion ?? 1 },
    );
  }
}

/**
 * Refuses a version lower than the highest seen for this model id (TUF rollback). The marks are
 * kept per publisher key and only the keys the app still pins count: a compromised key that
 * signed a huge version (fast-forward) is recovered from by dropping it from `publisherKeys`,
 * which drops its mark too, while versions signed by keys still pinned keep their floor.
 * (A mark from before marks were per key counts as the verifying key's.)
 */
async function checkRollback(
  manifest: Manifest,
  signedBy: string,
  pinned: readonly string[],
  storage: Storage | undefined,
): Promise<void> {
  const id = manifest.model.id;
  const markOf = (kid: string) => `maxVersion:${id}:${kid}`;
  const read = (key: string) => storage?.getState<number>(key).catch(() => undefined) ?? undefined;
  const legacy = (await read(`maxVersion:${id}`)) ?? 0;
  const marks = await Promise.all(pinned.map((kid) => read(markOf(kid))));
  const highest = Math.max(legacy, ...marks.map((m) => m ?? 0));
  if (manifest.model.version < highest) {
    throw new ModelVaultError(
      "ERR_MANIFEST_ROLLBACK",
      `version ${manifest.model.version} is older than version ${highest} already seen`,
    );
  }
  const own = (await read(markOf(signedBy))) ?? 0;
  if (manifest.model.version > own || legacy > 0)
    await storage
      ?.setState(markOf(signedBy), Math.max(manifest.model.version, legacy))
      .catch(() => undefined);
  if (legacy > 0) await storage?.setState(`maxVersion:${id}`, 0).catch(() => undefined);
}

/** Refuses a manifest whose signed validity has passed, on the worker's trusted clock (TUF freeze). */
function checkExpiry(manifest: Manifest, now: number): void {
  if (manifest.expires !== undefined && manifest.expires <= now)
    throw new ModelVaultError(
      "ERR_MANIFEST_EXPIRED",
      `${manifest.model.id} v${manifest.model.version} was valid until ${new Date(manifest.expires * 1000).toISOString()}`,
      { expires: manifest.expires },
    );
}

/**
 * Fetches (or, offline, takes from the cache) the signed manifest and accepts it only if it
 * verifies under a pinned publisher key, is the expected model, is not a rollback, and carries
 * an output policy the runtime can apply. Only then is it cached.
 */
export async function loadManifest(
  url: URL,
  o: {
    publisherKeys: readonly EcJwk[];
    expect: ExpectedModel | undefined;
    storage: Storage | undefined;
    cache: boolean;
    allowOffline: boolean;
    retry: RetryOptions;
    now: number;
    signal?: AbortSignal | undefined;
  },
): Promise<TrustedManifest> {
  let jws: string;
  let fromCache = false;
  try {
    jws = await download(url, o.retry, o.signal);
  } catch (e) {
    const cached = isModelVaultError(e, "ERR_NETWORK")
      ? await o.storage?.db.get("manifests", url.toString()).catch(() => undefined)
      : undefined;
    if (!cached || !o.allowOffline) throw e;
    jws = cached.jws;
    fromCache = true;
  }
  const { manifest, publisherKid } = await verifyManifest(jws, o.publisherKeys);
  checkExpected(manifest, o.expect);
  checkOutputPolicy(manifest.outputPolicy, manifest.signature.outputs);
  checkExpiry(manifest, o.now);
  const pinned = await Promise.all(o.publisherKeys.map((k) => jwkThumbprint(k)));
  await checkRollback(manifest, publisherKid, pinned, o.storage);
  if (o.cache && !fromCache)
    await o.storage?.db
      .put("manifests", { url: url.toString(), jws, storedAt: o.now })
      .catch(() => undefined);
  return { manifest, jws, digest: await manifestDigest(jws), publisherKid, fromCache };
}
