import { decodeJwt, type JSONWebKeySet } from "jose";
import { cekWrapInfo, unwrapContentKeyOnDevice } from "../src/core/cek-wrap.js";
import { manifestDigest } from "../src/core/digest.js";
import { type ErrorCode, isModelVaultError, ModelVaultError } from "../src/core/errors.js";
import { type LicenseClaims, verifyLicenseToken } from "../src/core/license-token.js";
import type { Manifest } from "../src/core/manifest.js";
import { MAX_MANIFEST_BYTES, verifyManifest } from "../src/core/manifest-jws.js";
import type {
  LicenseState,
  LoadResult,
  PlainTensor,
  RuntimeCallbacks,
  RuntimeLoadOptions,
} from "../src/core/worker-protocol.js";
import { deviceKeys } from "./device-keys.js";
import { type IssuedLicense, LicenseClient } from "./license-client.js";
import { chooseBackend, OrtSession, warmUp } from "./ort-session.js";
import { withRetry } from "./retry.js";
import { checkRuntimeAssets } from "./runtime-assets.js";
import { secureUrl } from "./secure-url.js";
import { loadShards } from "./shard-loader.js";
import { type DeviceRecord, openStorage, type Storage } from "./storage.js";
import { TrustedClock } from "./trusted-clock.js";
import { UsageReporter } from "./usage-reporter.js";
import { validateInputs } from "./validate-inputs.js";

const REFUSALS: ErrorCode[] = [
  "ERR_ENTITLEMENT_REVOKED",
  "ERR_ENTITLEMENT_EXPIRED",
  "ERR_ENTITLEMENT_NOT_FOUND",
  "ERR_DEVICE_REVOKED",
  "ERR_LICENSE_REVOKED",
  "ERR_QUOTA_EXHAUSTED",
  "ERR_USAGE_OVERDUE",
  "ERR_DEVICE_LIMIT",
];

/**
 * The secure pipeline, run inside the worker: verify the manifest, get a device-bound license,
 * unwrap the content key inside Web Crypto, fetch/verify/decrypt shards, create the session,
 * zero the plaintext; then guard every run with the license, renew it, and report usage.
 * Teardown order in dispose(): timers, usage flush, session, storage. The content key is held
 * only by the load in progress, so once loaded nothing in the worker can decrypt again.
 */
export class ModelRuntime {
  private storage: Storage | undefined;
  private clock!: TrustedClock;
  private session: OrtSession | undefined;
  private manifest!: Manifest;
  private digest!: string;
  private device!: DeviceRecord;
  private client!: LicenseClient;
  private usage!: UsageReporter;
  private claims!: LicenseClaims;
  private licenseKey = "";
  private used = 0;
  private offline = false;
  private renewals = 0;
  private revoked: ModelVaultError | undefined;
  /** Set while renewals fail for network reasons: the offline allowance then applies online too. */
  private renewalFailing = false;
  /** The license's offline deadline, when its scope allows offline use. */
  private offlineUntil: number | undefined;
  private renewTimer: ReturnType<typeof setTimeout> | undefined;
  private disposed = false;
  private options!: RuntimeLoadOptions;
  private callbacks!: RuntimeCallbacks;
  private readonly memoryDevices = new Map<string, DeviceRecord>();

  constructor(private readonly idb: IDBFactory | undefined = globalThis.indexedDB) {}

  private check(): void {
    if (this.disposed) throw new ModelVaultError("ERR_DISPOSED");
  }

  async load(
    options: RuntimeLoadOptions,
    callbacks: RuntimeCallbacks,
    signal?: AbortSignal,
  ): Promise<LoadResult> {
    this.options = options;
    this.callbacks = callbacks;
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
    this.clock = await TrustedClock.start(options.wallClock, this.storage);

    const { jws, fromCache } = await this.fetchManifest(manifestUrl, signal);
    const verified = await verifyManifest(jws, options.publisherKeys);
    this.manifest = verified.manifest;
    await this.checkRollback();
    this.digest = await manifestDigest(jws);
    if (options.cache && !fromCache)
      await this.storage?.db
        .put("manifests", { url: manifestUrl.toString(), jws, storedAt: this.clock.now() })
        .catch(() => undefined);
    callbacks.progress({
      status: "manifest-verified",
      modelId: this.manifest.model.id,
      version: this.manifest.model.version,
      publisherKid: verified.publisherKid,
      fromCache,
    });
    this.check();

    await assets;
    this.device = await deviceKeys(server.origin, this.storage, this.memoryDevices);
    this.client = new LicenseClient(
      server,
      this.device,
      () => callbacks.credential(),
      options.retry,
      () => this.clock.now(),
    );
    this.licenseKey = `${server.origin}|${this.manifest.model.id}|${this.manifest.model.version}|${this.device.jkt}`;
    // Three things overlap: the license (then the key unwrap), the shard downloads, and
    // onnxruntime's wasm start-up. Decryption waits only for the key.
    const contentKey = this.licenseAndKey(signal);
    contentKey.catch(() => undefined);
    const { buffers, cacheWrites } = await loadShards(this.manifest, contentKey, {
      baseUrl: manifestUrl,
      storage: this.storage,
      useCache: options.cache,
      concurrency: options.concurrency,
      retry: options.retry,
      ...(signal ? { signal } : {}),
      progress: callbacks.progress,
    });
    await warm;
    try {
      this.check();
      const [graph, ...external] = this.manifest.files;
      this.session = await OrtSession.create(
        buffers.get(graph?.location ?? "") as Uint8Array,
        external.map((f) => ({ path: f.location, data: buffers.get(f.location) as Uint8Array })),
        choice,
        options.wasmPaths,
        options.threads,
      );
      callbacks.progress({ status: "session-created", backend: choice.backend, reason: choice.reason });
      await cacheWrites; // overlapped with session creation; a reload right after finds everything
      this.scheduleRenewal();
      void this.flushUsage();
      callbacks.progress({ status: "ready" });
      return {
        modelId: this.manifest.model.id,
        version: this.manifest.model.version,
        publisherKid: verified.publisherKid,
        inputs: this.manifest.signature.inputs,
        outputs: this.manifest.signature.outputs,
        backend: choice.backend,
        backendReason: choice.reason,
        license: this.licenseState(),
      };
    } finally {
      // onnxruntime has copied the model into its own memory: our plaintext goes now.
      for (const b of buffers.values()) b.fill(0);
    }
  }

  /** Gets the license, reports it, and unwraps the content key inside Web Crypto. */
  private async licenseAndKey(signal?: AbortSignal): Promise<CryptoKey> {
    await this.obtainLicense(signal);
    this.usage = new UsageReporter(this.storage, this.device, this.client, () => this.clock.now());
    await this.usage.init(this.claims.jti);
    const key = await unwrapContentKeyOnDevice(
      this.device.agreePrivate,
      this.claims.cek.epk,
      this.claims.cek.wrapped,
      cekWrapInfo(this.claims.jti, this.manifest.model.id, this.manifest.model.version),
    ).catch((cause) => {
      throw new ModelVaultError(
        "ERR_LICENSE_INVALID",
        "the content key does not unwrap with this device's key",
        {},
        { cause },
      );
    });
    this.callbacks.progress({
      status: "license-granted",
      licenseId: this.claims.jti,
      deviceJkt: this.device.jkt,
      expiresAt: this.claims.exp,
      offlineUntil: this.claims.offline_until ?? null,
      allowance: this.claims.quota.allowance,
      offline: this.offline,
    });
    return key;
  }

  private async fetchManifest(url: URL, signal?: AbortSignal): Promise<{ jws: string; fromCache: boolean }> {
    try {
      const jws = await withRetry(
        async () => {
          const res = await fetch(url, { signal: signal ?? null, cache: "no-store" });
          if (!res.ok)
            throw new ModelVaultError(
              res.status === 404 ? "ERR_MANIFEST_MALFORMED" : "ERR_NETWORK",
              `manifest: HTTP ${res.status}`,
            );
          const text = await res.text();
          if (text.length > MAX_MANIFEST_BYTES) throw new ModelVaultError("ERR_MANIFEST_TOO_LARGE");
          return text;
        },
        { attempts: Math.min(2, this.options.retry.attempts), baseDelayMs: this.options.retry.baseDelayMs },
        signal,
      );
      return { jws, fromCache: false };
    } catch (e) {
      const cached = isModelVaultError(e, "ERR_NETWORK")
        ? await this.storage?.db.get("manifests", url.toString()).catch(() => undefined)
        : undefined;
      if (cached && this.options.allowOffline) return { jws: cached.jws, fromCache: true };
      throw e;
    }
  }

  /** Refuses a version lower than the highest seen for this model id (TUF rollback). */
  private async checkRollback(): Promise<void> {
    const key = `maxVersion:${this.manifest.model.id}`;
    const highest = (await this.storage?.getState<number>(key).catch(() => undefined)) ?? 0;
    if (this.manifest.model.version < highest) {
      throw new ModelVaultError(
        "ERR_MANIFEST_ROLLBACK",
        `version ${this.manifest.model.version} is older than version ${highest} already seen`,
      );
    }
    if (this.manifest.model.version > highest)
      await this.storage?.setState(key, this.manifest.model.version).catch(() => undefined);
  }

  private async obtainLicense(signal?: AbortSignal): Promise<void> {
    try {
      await this.adopt(await this.client.request(this.manifest.model, this.digest, signal));
      this.offline = false;
    } catch (e) {
      if (!isModelVaultError(e, "ERR_NETWORK") || !this.options.allowOffline) {
        if (isModelVaultError(e) && REFUSALS.includes(e.code))
          await this.storage?.db.delete("licenses", this.licenseKey).catch(() => undefined);
        throw e;
      }
      await this.useCachedLicense(e);
    }
  }

  /** Takes a verified license as the current one. */
  private setClaims(claims: LicenseClaims): void {
    this.claims = claims;
    this.offlineUntil = claims.scope.split(" ").includes("offline") ? claims.offline_until : undefined;
    this.used = 0;
  }

  private async adopt(issued: IssuedLicense): Promise<void> {
    this.setClaims(issued.claims);
    await this.clock.observe(issued.claims.iat);
    await this.storage?.db
      .put("licenses", {
        key: this.licenseKey,
        token: issued.token,
        jwks: issued.jwks,
        receivedAt: this.clock.now(),
      })
      .catch(() => undefined);
  }

  /** Offline start: the cached license, re-verified under the cached JWKS, within offline_until. */
  private async useCachedLicense(cause: ModelVaultError): Promise<void> {
    const cached = await this.storage?.db.get("licenses", this.licenseKey).catch(() => undefined);
    if (!cached) throw cause;
    const jwks = cached.jwks as JSONWebKeySet;
    const claims = await verifyLicenseToken(cached.token, {
      jwks,
      issuer: new URL(this.options.licenseServer).origin,
      deviceJkt: this.device.jkt,
      // Signature, issuer and binding as of when it was issued; expiry is judged below.
      currentDate: new Date((decodeJwt(cached.token).iat ?? 0) * 1000),
    });
    this.setClaims(claims);
    if (this.clock.now() >= (this.offlineUntil ?? claims.exp)) {
      throw new ModelVaultError(
        "ERR_LICENSE_EXPIRED",
        "offline, and the license's offline allowance has ended",
      );
    }
    this.offline = true;
  }

  licenseState(): LicenseState {
    const c = this.claims;
    return {
      licenseId: c.jti,
      deviceJkt: this.device.jkt,
      expiresAt: c.exp,
      offlineUntil: c.offline_until ?? null,
      scopes: c.scope.split(" "),
      allowance: c.quota.allowance,
      used: this.used,
      remaining: Math.max(0, c.quota.allowance - this.used),
      offline: this.offline,
      renewals: this.renewals,
      revoked: (this.revoked?.code as ErrorCode | undefined) ?? null,
    };
  }

  /** The license checks every run passes: not revoked, not expired (or within offline_until), quota left. */
  private guard(): void {
    this.check();
    if (this.revoked) throw new ModelVaultError(this.revoked.code, this.revoked.message);
    const now = this.clock.now();
    const c = this.claims;
    // Past exp, the offline allowance applies when the server cannot be reached (offline start or failing renewals).
    const offlineOk =
      this.offlineUntil !== undefined && now < this.offlineUntil && (this.offline || this.renewalFailing);
    if (now >= c.exp && !offlineOk) {
      throw new ModelVaultError("ERR_LICENSE_EXPIRED");
    }
    if (this.used >= c.quota.allowance)
      throw new ModelVaultError(
        "ERR_QUOTA_EXHAUSTED",
        "this license's inference allowance is spent; renewal will ask for more",
      );
  }

  async run(feeds: Record<string, PlainTensor>): Promise<Record<string, PlainTensor>> {
    this.guard();
    validateInputs(feeds, this.manifest.signature.inputs);
    const session = this.session;
    if (!session) throw new ModelVaultError("ERR_DISPOSED");
    const out = await session.run(feeds);
    this.used++;
    this.usage.count(this.claims.jti);
    return out;
  }

  private scheduleRenewal(): void {
    if (this.disposed) return;
    const now = this.clock.now();
    const lifetime = this.claims.exp - this.claims.iat;
    const at = this.offline
      ? now + 30
      : this.claims.iat + Math.max(1, Math.floor(lifetime * (this.options.renewAt ?? 0.75)));
    clearTimeout(this.renewTimer);
    this.renewTimer = setTimeout(() => void this.renew(), Math.max(1000, (at - now) * 1000));
  }

  /** Renews now: flushes usage first (the server wants reports before renewal), then asks for a license. */
  async renew(): Promise<LicenseState> {
    this.check();
    if (this.revoked) throw this.revoked;
    await this.flushUsage(true);
    try {
      await this.adopt(await this.client.request(this.manifest.model, this.digest));
      this.offline = false;
      this.renewalFailing = false;
      this.renewals++;
      this.callbacks.event({ type: "license-renewed", license: this.licenseState() });
    } catch (e) {
      if (isModelVaultError(e) && e.code !== "ERR_NETWORK") {
        await this.revoke(e);
        throw e;
      }
      this.renewalFailing = true;
      this.callbacks.event({
        type: "license-expiring",
        license: this.licenseState(),
        reason: (e as Error).message,
      });
    } finally {
      this.scheduleRenewal();
    }
    return this.licenseState();
  }

  /** A refused renewal: release the session (the key was never kept past loading); run() fails with the refusal's code from now on. */
  private async revoke(e: ModelVaultError): Promise<void> {
    this.revoked = e;
    const session = this.session;
    this.session = undefined;
    await session?.release();
    await this.storage?.db.delete("licenses", this.licenseKey).catch(() => undefined);
    this.callbacks.event({ type: "license-revoked", code: e.code, message: e.message });
  }

  async flushUsage(heartbeat = false): Promise<{ sent: number; pending: number }> {
    if (!this.usage) return { sent: 0, pending: 0 };
    const r = await this.usage.flush({ heartbeat, license: this.claims.jti });
    this.callbacks.event({ type: "usage-flushed", ...r });
    return r;
  }

  /** Releases everything; safe to call more than once. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    clearTimeout(this.renewTimer);
    await this.usage?.flush().catch(() => undefined);
    await this.usage?.dispose();
    await this.session?.release();
    this.session = undefined;
    await this.clock?.persist().catch(() => undefined);
    this.storage?.close();
  }
}
