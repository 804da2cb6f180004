import type { JSONWebKeySet } from "jose";
import { createDpopProof } from "../src/core/dpop-proof.js";
import { ERROR_CODES, type ErrorCode, ModelVaultError } from "../src/core/errors.js";
import { type LicenseClaims, verifyLicenseToken } from "../src/core/license-token.js";
import { type RetryOptions, withRetry } from "./retry.js";
import type { DeviceRecord } from "./storage.js";

/** The server's answer to a usage batch (docs/PROTOCOL.md, "POST /v1/usage"). */
export interface UsageReply {
  results: { seq: number | null; status: string; code?: string }[];
  /** The device's chain head as the server holds it after the batch: where a client resyncs from. */
  head: { seq: number; hash: string } | null;
}

export interface IssuedLicense {
  token: string;
  claims: LicenseClaims;
}

/**
 * Turns a server error body into its ModelVaultError, keeping its data (ERR_USAGE_OVERDUE names
 * the license to report). 5xx (an identity-provider or database outage, a restart) and 429 become
 * retryable ERR_NETWORK: never a reason to stop.
 */
async function failure(res: Response): Promise<ModelVaultError> {
  const body = (await res.json().catch(() => ({}))) as {
    error?: { code?: string; message?: string; data?: Record<string, unknown> };
  };
  const code = body.error?.code;
  if (res.status >= 500 || res.status === 429)
    return new ModelVaultError("ERR_NETWORK", `license server answered ${res.status} ${code ?? ""}`.trim());
  if (code && code in ERROR_CODES)
    return new ModelVaultError(code as ErrorCode, body.error?.message, body.error?.data ?? {});
  return new ModelVaultError("ERR_LICENSE_INVALID", `license server answered ${res.status}`);
}

/**
 * Talks to the license server for one device: fetches its JWKS, requests licenses with a DPoP
 * proof, keeps the newest DPoP-Nonce and retries once when the server asks for one (RFC 9449 §8).
 */
export class LicenseClient {
  private nonce: string | undefined;
  /** Server time minus local trusted time, from the Date header: DPoP iat must be within ±60 s of the server's. */
  private skew = 0;

  constructor(
    private readonly server: URL,
    private readonly device: DeviceRecord,
    private readonly credential: () => Promise<string>,
    private readonly retry: RetryOptions,
    private readonly now: () => number,
    /** Pinned license keys: when given, licenses verify under these and nothing the server sends. */
    private readonly pinned: JSONWebKeySet | undefined,
  ) {}

  /** The server's time as best known: local trusted time corrected by the observed skew. */
  serverNow(): number {
    return this.now() + this.skew;
  }

  private observeDate(res: Response): void {
    const date = Date.parse(res.headers.get("date") ?? "");
    if (Number.isFinite(date)) this.skew = Math.round(date / 1000) - this.now();
  }

  private url(path: string): string {
    return new URL(path, this.server).toString();
  }

  async jwks(signal?: AbortSignal): Promise<JSONWebKeySet> {
    return withRetry(
      async () => {
        const res = await fetch(this.url("/.well-known/jwks.json"), {
          signal: signal ?? null,
          cache: "no-store",
        });
        if (!res.ok) throw await failure(res);
        this.observeDate(res);
        this.nonce = res.headers.get("dpop-nonce") ?? this.nonce;
        return (await res.json()) as JSONWebKeySet;
      },
      this.retry,
      signal,
    );
  }

  /** Requests (or renews) a license and verifies it (pinned keys if any) before returning it. */
  async request(
    model: { id: string; version: number },
    manifestDigest: string,
    signal?: AbortSignal,
  ): Promise<IssuedLicense> {
    const jwks = await this.jwks(signal);
    const body = JSON.stringify({ model, manifestDigest, agreementKey: this.device.agreePublic });
    const token = await withRetry(
      async () => {
        for (let round = 0; round < 2; round++) {
          const url = this.url("/v1/licenses");
          const proof = await createDpopProof(this.device.signPrivate, this.device.signPublic, {
            htm: "POST",
            htu: url,
            akt: this.device.akt,
            iat: this.serverNow(),
            ...(this.nonce ? { nonce: this.nonce } : {}),
          });
          const res = await fetch(url, {
            method: "POST",
            headers: {
              authorization: `Bearer ${await this.credential()}`,
              "content-type": "application/json",
              dpop: proof,
            },
            body,
            signal: signal ?? null,
            cache: "no-store",
          });
          this.nonce = res.headers.get("dpop-nonce") ?? this.nonce;
          if (res.ok) return ((await res.json()) as { license: string }).license;
          const e = await failure(res);
          if (e.code !== "ERR_DPOP_NONCE_REQUIRED") throw e;
        }
        throw new ModelVaultError("ERR_DPOP_NONCE_REQUIRED", "the server kept asking for a new DPoP nonce");
      },
      this.retry,
      signal,
    );
    const claims = await verifyLicenseToken(token, {
      jwks: this.pinned ?? jwks,
      issuer: this.server.origin,
      deviceJkt: this.device.jkt,
      currentDate: new Date(this.serverNow() * 1000),
      // Date headers have one-second resolution and the request took time.
      clockToleranceSeconds: 30,
    });
    if (
      claims.mdl.id !== model.id ||
      claims.mdl.version !== model.version ||
      claims.mdl.digest !== manifestDigest
    ) {
      throw new ModelVaultError("ERR_LICENSE_WRONG_MODEL");
    }
    return { token, claims };
  }

  /** Posts usage reports; returns the server's per-report results and the device's acknowledged head. */
  async sendUsage(reports: string[]): Promise<UsageReply> {
    const res = await fetch(this.url("/v1/usage"), {
      method: "POST",
      headers: { authorization: `Bearer ${await this.credential()}`, "content-type": "application/json" },
      body: JSON.stringify({ reports }),
      cache: "no-store",
    });
    const body = (await res.json().catch(() => ({}))) as Partial<UsageReply>;
    if (body.results) return { results: body.results, head: body.head ?? null };
    throw await failure(res);
  }
}
