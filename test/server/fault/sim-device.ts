import { apiCall, createPrincipal, packAndRegister } from "../../../scripts/provision.js";
import type { EcJwk } from "../../../src/core/jwk.js";
import { signUsageReport, usageGenesis, usageReportHash } from "../../../src/core/usage-report.js";
import { generateKeyPairJwk } from "../../../src/pack/keygen.js";
import { DIGITS, TestDevice } from "../harness.js";
import { scratchDir } from "./serve-process.js";

/** One response a simulated device saw. */
export interface Outcome {
  instance: string;
  kind: "license" | "usage";
  status: number | "network";
  code?: string;
  retryAfter?: string | null;
}

const model = { id: "digits", version: 1 };
const now = () => Math.floor(Date.now() / 1000);

/** Registers digits and returns what devices need: the manifest digest and a way to make clients. */
export async function provision(url: string, admin: string) {
  const call = apiCall(url);
  const publisher = await createPrincipal(call, admin, "pub", ["publisher"]);
  const licensor = await createPrincipal(call, admin, "lic", ["licensor"]);
  const keys = await generateKeyPairJwk("sig");
  await call(admin, "POST", "/v1/admin/publisher-keys", { jwk: keys.publicJwk, principalId: publisher.id });
  const jwks = (await (await fetch(`${url}/.well-known/jwks.json`)).json()) as { keys: EcJwk[] };
  const { digest } = await packAndRegister(call, {
    publisherToken: publisher.token,
    signingKey: keys.privateJwk,
    registrationKey: jwks.keys.find((k) => k.use === "enc") as EcJwk,
    modelPath: DIGITS,
    id: "digits",
    version: 1,
    outDir: await scratchDir("mv-fault-pkg-"),
  });
  /** A client principal with an entitlement large enough for any test. */
  const client = async (name: string) => {
    const c = await createPrincipal(call, admin, name, ["client"]);
    await call(licensor.token, "POST", "/v1/entitlements", {
      principalId: c.id,
      modelId: "digits",
      scopes: ["infer"],
      quota: 1_000_000,
      periodSeconds: 86400 * 30,
      licenseAllowance: 1000,
      maxDevices: 10,
      licenseTtlSeconds: 3600,
      offlineSeconds: 0,
      expiresAt: now() + 30 * 86400,
    });
    return c;
  };
  return { digest, client };
}

/**
 * A device as the runtime behaves: gets a license, then sends signed usage reports one at a
 * time, resending the same report until the server acknowledges it (at-least-once), renewing
 * now and then. It remembers exactly what was acknowledged, to check against the database.
 */
export class SimDevice {
  private sinceLicense = 0;
  private prev = "";
  private pending: { token: string; seq: number; hash: string } | undefined;
  jti: string | undefined;
  /** Acknowledged reports: seq → hash and license. */
  readonly acked = new Map<number, { hash: string; jti: string }>();
  /** Licenses the server answered 200 for. */
  readonly licenses: string[] = [];

  private constructor(
    readonly device: TestDevice,
    private readonly token: string,
    private readonly digest: string,
    private readonly publicUrl: string,
  ) {}

  static async create(token: string, digest: string, publicUrl: string): Promise<SimDevice> {
    const d = new SimDevice(await TestDevice.create(), token, digest, publicUrl);
    d.prev = await usageGenesis(d.device.jkt);
    return d;
  }

  /** One request to `instance`: a license when due, else the next (or the unacknowledged) report. */
  async step(instance: string): Promise<Outcome> {
    const renew = !this.jti || (this.pending === undefined && this.sinceLicense >= 20);
    try {
      return renew ? await this.requestLicense(instance) : await this.report(instance);
    } catch (e) {
      if (e instanceof TypeError) return { instance, kind: renew ? "license" : "usage", status: "network" };
      throw e;
    }
  }

  private async requestLicense(instance: string): Promise<Outcome> {
    const h = {
      url: this.publicUrl,
      clock: { now },
      call: async (method: string, path: string, token?: string, body?: unknown, headers = {}) => {
        const res = await fetch(`${instance}${path}`, {
          method,
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...headers },
          body: JSON.stringify(body),
        });
        return { status: res.status, body: await res.json(), headers: res.headers };
      },
    };
    const r = await this.device.license(h as never, this.token, { model, manifestDigest: this.digest });
    if (r.status === 200) {
      const claims = JSON.parse(Buffer.from(r.body.license.split(".")[1], "base64url").toString());
      this.jti = claims.jti as string;
      this.licenses.push(this.jti);
      this.sinceLicense = 0;
    }
    return outcome(instance, "license", r.status, r.body, r.headers);
  }

  private async report(instance: string): Promise<Outcome> {
    if (!this.pending) {
      const seq = this.acked.size + 1;
      const t = now();
      const token = await signUsageReport(this.device.sign.privateKey, this.device.jkt, {
        lic: this.jti as string,
        seq,
        prev: this.prev,
        count: 1,
        from: t - 1,
        to: t,
        iat: t,
      });
      this.pending = { token, seq, hash: await usageReportHash(token) };
    }
    const res = await fetch(`${instance}/v1/usage`, {
      method: "POST",
      headers: { authorization: `Bearer ${this.token}`, "content-type": "application/json" },
      body: JSON.stringify({ reports: [this.pending.token] }),
    });
    const body = (await res.json()) as { results?: { status: string }[]; error?: { code: string } };
    const status = body.results?.[0]?.status;
    if (res.status === 200 && (status === "accepted" || status === "duplicate")) {
      this.acked.set(this.pending.seq, { hash: this.pending.hash, jti: this.jti as string });
      this.prev = this.pending.hash;
      this.sinceLicense++;
      this.pending = undefined;
    }
    return outcome(instance, "usage", res.status, body, res.headers);
  }
}

function outcome(
  instance: string,
  kind: Outcome["kind"],
  status: number,
  body: { error?: { code?: string } } | undefined,
  headers: Headers,
): Outcome {
  return {
    instance,
    kind,
    status,
    ...(body?.error?.code ? { code: body.error.code } : {}),
    retryAfter: headers.get("retry-after"),
  };
}
