import { decodeJwt, type JSONWebKeySet } from "jose";
import { type ErrorCode, isModelVaultError, ModelVaultError } from "../src/core/errors.js";
import { type LicenseClaims, verifyLicenseToken } from "../src/core/license-token.js";
import type { LicenseState, RuntimeEvent } from "../src/core/worker-protocol.js";
import type { IssuedLicense, LicenseClient } from "./license-client.js";
import type { DeviceRecord, Storage } from "./storage.js";
import type { TrustedClock } from "./trusted-clock.js";
import type { UsageReporter } from "./usage-reporter.js";

/**
 * The server's genuine policy refusals: the only answers that stop a running model (revoked,
 * expired, quota, device limit, reports that stay overdue, a retired version, a manifest whose
 * publisher key was revoked or whose signed validity lapsed). Everything else at renewal (an
 * outage, a 503, a rotated credential refused for now, a malformed answer) is retried for as
 * long as the license lasts.
 */
export const REFUSALS: readonly ErrorCode[] = [
  "ERR_ENTITLEMENT_REVOKED",
  "ERR_ENTITLEMENT_EXPIRED",
  "ERR_ENTITLEMENT_NOT_FOUND",
  "ERR_DEVICE_REVOKED",
  "ERR_LICENSE_REVOKED",
  "ERR_QUOTA_EXHAUSTED",
  "ERR_USAGE_OVERDUE",
  "ERR_DEVICE_LIMIT",
  "ERR_MODEL_RETIRED",
  "ERR_PUBLISHER_KEY_REVOKED",
  "ERR_MANIFEST_EXPIRED",
];

/** Seconds between renewal attempts while they fail (and while offline). */
const RETRY_SECONDS = 30;

export interface SessionDeps {
  client: LicenseClient;
  usage: UsageReporter;
  storage: Storage | undefined;
  clock: TrustedClock;
  device: DeviceRecord;
  model: { id: string; version: number };
  digest: string;
  /** Where this license is cached: server, model, version and device. */
  cacheKey: string;
  issuer: string;
  /** Pinned license keys; offline starts need them. */
  pinned: JSONWebKeySet | undefined;
  allowOffline: boolean;
  renewAt: number;
  event(e: RuntimeEvent): void;
  /** A genuine refusal: the runtime drops its session. */
  onRefused(e: ModelVaultError): Promise<void>;
}

/**
 * One device's license for one model: obtains it (online, or from the cache under pinned keys
 * within its offline allowance), guards every run, renews it on time, and stops for good only
 * on a genuine refusal.
 */
export class LicenseSession {
  private used = 0;
  private renewals = 0;
  private revoked: ModelVaultError | undefined;
  /** Set while renewals fail: the offline allowance then applies online too. */
  private renewalFailing = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private disposed = false;

  private constructor(
    private readonly d: SessionDeps,
    private claims: LicenseClaims,
    private offline: boolean,
  ) {}

  /** Gets a license from the server, or falls back to the cached one when the server is unreachable. */
  static async start(d: SessionDeps, signal?: AbortSignal): Promise<LicenseSession> {
    try {
      const issued = await requestCovering(d, signal);
      await adopt(d, issued);
      return new LicenseSession(d, issued.claims, false);
    } catch (e) {
      if (!isModelVaultError(e, "ERR_NETWORK") || !d.allowOffline) {
        if (isModelVaultError(e) && REFUSALS.includes(e.code))
          await d.storage?.db.delete("licenses", d.cacheKey).catch(() => undefined);
        throw e;
      }
      return new LicenseSession(d, await cachedClaims(d, e), true);
    }
  }

  get current(): LicenseClaims {
    return this.claims;
  }

  /** The deadline past `exp`, when the scope allows offline use. */
  private get offlineUntil(): number | undefined {
    return this.claims.scope.split(" ").includes("offline") ? this.claims.offline_until : undefined;
  }

  state(): LicenseState {
    const c = this.claims;
    return {
      licenseId: c.jti,
      deviceJkt: this.d.device.jkt,
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

  /** The checks every run passes: not refused, not expired (or within offline_until), allowance left. */
  guard(): void {
    if (this.revoked) throw new ModelVaultError(this.revoked.code, this.revoked.message);
    const now = this.d.clock.now();
    const c = this.claims;
    // Past exp, the offline allowance applies only when the server cannot be reached (an
    // offline start or failing renewals); an online device renews instead.
    const until = this.offlineUntil;
    const offlineOk = until !== undefined && now < until && (this.offline || this.renewalFailing);
    if (now >= c.exp && !offlineOk) throw new ModelVaultError("ERR_LICENSE_EXPIRED");
    if (this.used >= c.quota.allowance)
      throw new ModelVaultError(
        "ERR_QUOTA_EXHAUSTED",
        "this license's inference allowance is spent; renewal will ask for more",
      );
  }

  /** Counts one run toward the allowance and the usage reports. */
  count(): void {
    this.used++;
    this.d.usage.count(this.claims.jti);
  }

  /** Starts the renewal cycle once the model is ready. */
  begin(): void {
    this.schedule();
  }

  private schedule(): void {
    if (this.disposed) return;
    const now = this.d.clock.now();
    const lifetime = this.claims.exp - this.claims.iat;
    const at =
      this.offline || this.renewalFailing
        ? now + RETRY_SECONDS
        : this.claims.iat + Math.max(1, Math.floor(lifetime * this.d.renewAt));
    clearTimeout(this.timer);
    this.timer = setTimeout(
      () => void this.renew().catch(() => undefined),
      Math.max(1000, (at - now) * 1000),
    );
  }

  /** Renews now: reports usage first (the server wants it before renewing), then asks for a license. */
  async renew(): Promise<LicenseState> {
    if (this.revoked) throw this.revoked;
    const flushed = await this.d.usage.flush({ heartbeat: true, license: this.claims.jti });
    this.d.event({ type: "usage-flushed", ...flushed });
    try {
      const issued = await requestCovering(this.d);
      await adopt(this.d, issued);
      this.claims = issued.claims;
      this.used = 0;
      this.offline = false;
      this.renewalFailing = false;
      this.renewals++;
      this.d.event({ type: "license-renewed", license: this.state() });
    } catch (e) {
      if (isModelVaultError(e) && REFUSALS.includes(e.code)) {
        await this.refuse(e);
        throw e;
      }
      this.renewalFailing = true;
      // The server could not be reached: the license now runs on its offline allowance.
      if (isModelVaultError(e, "ERR_NETWORK")) this.offline = true;
      this.d.event({ type: "license-expiring", license: this.state(), reason: (e as Error).message });
    } finally {
      this.schedule();
    }
    return this.state();
  }

  private async refuse(e: ModelVaultError): Promise<void> {
    this.revoked = e;
    clearTimeout(this.timer);
    await this.d.storage?.db.delete("licenses", this.d.cacheKey).catch(() => undefined);
    await this.d.onRefused(e);
    this.d.event({ type: "license-revoked", code: e.code, message: e.message });
  }

  dispose(): void {
    this.disposed = true;
    clearTimeout(this.timer);
  }
}

/**
 * Requests a license; when the server says the previous license's usage is overdue (and names
 * it), reports it and asks once more, as an honest device would have done anyway.
 */
async function requestCovering(d: SessionDeps, signal?: AbortSignal): Promise<IssuedLicense> {
  try {
    return await d.client.request(d.model, d.digest, signal);
  } catch (e) {
    const license = isModelVaultError(e, "ERR_USAGE_OVERDUE") ? e.data.license : undefined;
    if (typeof license !== "string" || !(await d.usage.cover(license))) throw e;
    return d.client.request(d.model, d.digest, signal);
  }
}

/** Takes a verified license: raises the trusted clock to its time and caches the token (never keys). */
async function adopt(d: SessionDeps, issued: IssuedLicense): Promise<void> {
  await d.clock.observe(issued.claims.iat);
  await d.storage?.db
    .put("licenses", { key: d.cacheKey, token: issued.token, receivedAt: d.clock.now() })
    .catch(() => undefined);
}

/**
 * Offline start: the cached license, verified only under the license keys the app pins (keys
 * stored beside it would let anyone with the profile plant their own), within offline_until.
 */
async function cachedClaims(d: SessionDeps, cause: ModelVaultError): Promise<LicenseClaims> {
  const cached = await d.storage?.db.get("licenses", d.cacheKey).catch(() => undefined);
  if (!cached) throw cause;
  if (!d.pinned) {
    throw new ModelVaultError(
      "ERR_NETWORK",
      `${cause.message}; starting offline needs the license server's keys pinned (licenseKeys)`,
    );
  }
  const claims = await verifyLicenseToken(cached.token, {
    jwks: d.pinned,
    issuer: d.issuer,
    deviceJkt: d.device.jkt,
    // Signature, issuer and binding as of when it was issued; expiry is judged below.
    currentDate: new Date((decodeJwt(cached.token).iat ?? 0) * 1000),
  });
  if (
    claims.mdl.id !== d.model.id ||
    claims.mdl.version !== d.model.version ||
    claims.mdl.digest !== d.digest
  )
    throw new ModelVaultError("ERR_LICENSE_WRONG_MODEL");
  const until = claims.scope.split(" ").includes("offline") ? claims.offline_until : undefined;
  if (d.clock.now() >= (until ?? claims.exp))
    throw new ModelVaultError(
      "ERR_LICENSE_EXPIRED",
      "offline, and the license's offline allowance has ended",
    );
  return claims;
}
