import type { JSONWebKeySet } from "jose";
import { cekWrapInfo, unwrapContentKeyOnDevice } from "../src/core/cek-wrap.js";
import { ModelVaultError } from "../src/core/errors.js";
import { type EcJwk, jwkThumbprint } from "../src/core/jwk.js";
import type { Manifest } from "../src/core/manifest.js";
import { applyOutputPolicy } from "../src/core/output-policy.js";
import type {
  CacheReport,
  LicenseState,
  LoadResult,
  PlainTensor,
  RuntimeCallbacks,
  RuntimeLoadOptions,
} from "../src/core/worker-protocol.js";
import { createCheckedSession } from "./backend-check.js";
import { deviceKeys } from "./device-keys.js";
import { LicenseClient } from "./license-client.js";
import { LicenseSession } from "./license-session.js";
import { loadManifest } from "./manifest-source.js";
import { chooseBackend, type OrtSession, warmUp } from "./ort-session.js";
import { checkRuntimeAssets } from "./runtime-assets.js";
import { secureUrl } from "./secure-url.js";
import { browserStorageEstimate, cachedObjects, type EstimateStorage, ShardCache } from "./shard-cache.js";
import { loadShards } from "./shard-loader.js";
import { unwrapSlotKeys } from "./slot-keys.js";
import { type DeviceRecord, openStorage, type Storage } from "./storage.js";
import { TrustedClock } from "./trusted-clock.js";
import { UsageReporter } from "./usage-reporter.js";
import { validateInputs } from "./validate-inputs.js";

/** What a finished load holds; built complete, once. */
interface Loaded {
  manifest: Manifest;
  license: LicenseSession;
  usage: UsageReporter;
  session: OrtSession;
  callbacks: RuntimeCallbacks;
  /** The load's background cache writes. */
  cached: Promise<CacheReport | null>;
}

/** Pinned license keys as the JWKS a verifier wants: `kid` is each key's RFC 7638 thumbprint. */
async function pinnedJwks(keys: readonly EcJwk[] | undefined): Promise<JSONWebKeySet | undefined> {
  if (!keys || keys.length === 0) return undefined;
  return {
    keys: await Promise.all(
      keys.map(async (k) => ({
        kty: "EC",
        crv: "P-256",
        x: k.x,
        y: k.y,
        kid: await jwkThumbprint(k),
        alg: "ES256",
      })),
    ),
  };
}

/**
 * The secure pipeline, run inside the worker: verify the manifest, get a device-bound license,
 * unwrap the content key inside Web Crypto, fetch/verify/decrypt shards, create the session,
 * zero the plaintext; then guard every run with the license, harden its outputs, and report
 * usage. Teardown order in dispose(): renewal timer, usage flush, session, storage. The content
 * key is held only by the load in progress, so once loaded nothing in the worker can decrypt again.
 */
export class ModelRuntime {
  private storage: Storage | undefined;
  private clock: TrustedClock | undefined;
  private loaded: Loaded | undefined;
  private disposed = false;
  private readonly memoryDevices = new Map<string, DeviceRecord>();

  constructor(
    private readonly idb: IDBFactory | undefined = globalThis.indexedDB,
    private readonly estimateStorage: EstimateStorage = browserStorageEstimate,
  ) {}

  private check(): void {
    if (this.disposed) throw new ModelVaultError("ERR_DISPOSED");
  }

  async load(
    options: RuntimeLoadOptions,
    callbacks: RuntimeCallbacks,
    signal?: AbortSignal,
  ): Promise<LoadResult> {
    const manifestUrl = secureUrl(options.manifestUrl);
    const server = secureUrl(options.licenseServer);
    // onnxruntime's wasm start-up is the longest single step: begin it before anything else.
    const choice = await chooseBackend(options.backend);
    const warm = warmUp(choice, options.wasmPaths, options.threads);
    const assets = checkRuntimeAssets(options.wasmPaths, signal);
    assets.catch(() => undefined);
    // Storage is opened even with cache off: device keys, licenses and the usage outbox live there.
    this.storage = await openStorage(this.idb);
    if (!this.storage)
      callbacks.progress({
        status: "warning",
        code: "ERR_STORAGE_UNAVAILABLE",
        message: "IndexedDB unavailable: no cache, no offline use",
      });
    const clock = await TrustedClock.start(options.wallClock, this.storage);
    this.clock = clock;

    const trusted = await loadManifest(manifestUrl, {
      publisherKeys: options.publisherKeys,
      expect: options.expect,
      storage: this.storage,
      cache: options.cache,
      allowOffline: options.allowOffline,
      retry: options.retry,
      now: clock.now(),
      signal,
    });
    const { manifest } = trusted;
    callbacks.progress({
      status: "manifest-verified",
      modelId: manifest.model.id,
      version: manifest.model.version,
      publisherKid: trusted.publisherKid,
      fromCache: trusted.fromCache,
    });
    this.check();

    await assets;
    const device = await deviceKeys(server.origin, this.storage, this.memoryDevices);
    const pinned = await pinnedJwks(options.licenseKeys);
    const client = new LicenseClient(
      server,
      device,
      () => callbacks.credential(),
      options.retry,
      () => clock.now(),
      pinned,
    );
    const usage = new UsageReporter(this.storage, device, client, () => clock.now());
    // Three things overlap: the license (then the key unwrap), the shard downloads, and
    // onnxruntime's wasm start-up. Decryption waits only for the key.
    const licensed = (async () => {
      const license = await LicenseSession.start(
        {
          client,
          usage,
          storage: this.storage,
          clock,
          device,
          model: manifest.model,
          digest: trusted.digest,
          cacheKey: `${server.origin}|${manifest.model.id}|${manifest.model.version}|${device.jkt}`,
          issuer: server.origin,
          pinned,
          allowOffline: options.allowOffline,
          renewAt: options.renewAt ?? 0.75,
          event: (e) => callbacks.event(e),
          onRefused: () => this.releaseSession(),
        },
        signal,
      );
      const claims = license.current;
      await usage.init(claims.jti);
      const key = await unwrapContentKeyOnDevice(
        device.agreePrivate,
        claims.cek.epk,
        claims.cek.wrapped,
        cekWrapInfo(claims.jti, manifest.model.id, manifest.model.version),
      ).catch((cause) => {
        throw new ModelVaultError(
          "ERR_LICENSE_INVALID",
          "the content key does not unwrap with this device's key",
          {},
          { cause },
        );
      });
      const slots = await unwrapSlotKeys(device.agreePrivate, claims, manifest);
      const state = license.state();
      callbacks.progress({
        status: "license-granted",
        licenseId: state.licenseId,
        deviceJkt: device.jkt,
        expiresAt: state.expiresAt,
        offlineUntil: state.offlineUntil,
        allowance: state.allowance,
        offline: state.offline,
      });
      return { license, key, slots };
    })();
    licensed.catch(() => undefined);
    const contentKey = licensed.then((l) => l.key);
    contentKey.catch(() => undefined); // a load that fails before decrypting never awaits it
    const slotKeys = manifest.trace
      ? licensed.then((l) => l.slots ?? { bits: new Uint8Array(), keys: [] })
      : undefined;
    slotKeys?.catch(() => undefined);
    const cache =
      options.cache && this.storage
        ? await ShardCache.open(
            this.storage,
            cachedObjects(manifest, clock.now()),
            callbacks.progress,
            options.persisted,
            this.estimateStorage,
          )
        : undefined;
    let buffers: Map<string, Uint8Array>;
    try {
      buffers = await loadShards(manifest, contentKey, slotKeys, {
        baseUrl: manifestUrl,
        cache,
        concurrency: options.concurrency,
        retry: options.retry,
        ...(signal ? { signal } : {}),
        progress: callbacks.progress,
      });
    } catch (e) {
      // Verified shards stay cached for the next attempt (a resumed load fetches only the rest):
      // let their writes land before the failure is reported.
      await cache?.settle().catch(() => undefined);
      throw e;
    }
    const { license } = await licensed;
    await warm;
    try {
      this.check();
      const [graph, ...external] = manifest.files;
      const { session, choice: backend } = await createCheckedSession({
        graph: buffers.get(graph?.location ?? "") as Uint8Array,
        external: external.map((f) => ({ path: f.location, data: buffers.get(f.location) as Uint8Array })),
        choice,
        preference: options.backend,
        wasmPaths: options.wasmPaths,
        threads: options.threads,
        signature: manifest.signature.inputs,
        storage: this.storage,
        memo: `${trusted.digest}|${license.state().deviceJkt}`,
      });
      callbacks.progress({ status: "session-created", backend: backend.backend, reason: backend.reason });
      // The cache fills in the background: the model is ready before IndexedDB has written it.
      const cached = cache ? cache.settle() : Promise.resolve(null);
      cached.catch(() => undefined);
      this.loaded = { manifest, license, usage, session, callbacks, cached };
      license.begin();
      void this.flushUsage().catch(() => undefined);
      callbacks.progress({ status: "ready" });
      return {
        modelId: manifest.model.id,
        version: manifest.model.version,
        publisherKid: trusted.publisherKid,
        inputs: manifest.signature.inputs,
        outputs: manifest.signature.outputs,
        backend: backend.backend,
        backendReason: backend.reason,
        license: license.state(),
      };
    } finally {
      // onnxruntime has copied the model into its own memory: our plaintext goes now.
      for (const b of buffers.values()) b.fill(0);
    }
  }

  private get model(): Loaded {
    this.check();
    if (!this.loaded) throw new ModelVaultError("ERR_DISPOSED", "no model is loaded");
    return this.loaded;
  }

  licenseState(): LicenseState {
    return this.model.license.state();
  }

  /** Guards the run with the license, validates inputs, runs, and applies the signed output policy. */
  async run(feeds: Record<string, PlainTensor>): Promise<Record<string, PlainTensor>> {
    const { license, manifest, session, usage } = this.model;
    license.guard();
    validateInputs(feeds, manifest.signature.inputs);
    const out = await session.run(feeds);
    license.count();
    // Counted before the output policy changes values; only counts ever leave the worker.
    if (manifest.monitoring) usage.observe(manifest.monitoring, out);
    return applyOutputPolicy(manifest.outputPolicy, out);
  }

  whenCached(): Promise<CacheReport | null> {
    return this.model.cached;
  }

  renew(): Promise<LicenseState> {
    return this.model.license.renew();
  }

  async flushUsage(): Promise<{ sent: number; pending: number }> {
    const { usage, license, callbacks } = this.model;
    const r = await usage.flush({ license: license.current.jti });
    callbacks.event({ type: "usage-flushed", ...r });
    return r;
  }

  /** A genuine refusal: the session goes (the key was never kept past loading). */
  private async releaseSession(): Promise<void> {
    await this.loaded?.session.release();
  }

  /** Releases everything; safe to call more than once. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    const loaded = this.loaded;
    loaded?.license.dispose();
    await loaded?.usage.flush().catch(() => undefined);
    await loaded?.usage.dispose();
    await loaded?.session.release();
    await this.clock?.persist().catch(() => undefined);
    this.storage?.close();
  }
}
