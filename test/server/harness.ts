import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { apiCall, packAndRegister } from "../../scripts/provision.js";
import { createDpopProof } from "../../src/core/dpop-proof.js";
import { type EcJwk, jwkThumbprint } from "../../src/core/jwk.js";
import { generateKeyPairJwk } from "../../src/pack/keygen.js";
import type { PackOptions } from "../../src/pack/pack-model.js";
import { bootstrapAdmin } from "../../src/server/bootstrap.js";
import type { DatabaseConfig } from "../../src/server/db/open-database.js";
import { type RunningServer, startServer } from "../../src/server/start-server.js";
import { cleanup, tempDir } from "../fixtures.js";

export const DIGITS = fileURLToPath(new URL("../../models/digits/digits.onnx", import.meta.url));

/** A controllable clock (seconds). */
export class TestClock {
  constructor(public t = Math.floor(Date.now() / 1000)) {}
  now = () => this.t;
  advance(seconds: number) {
    this.t += seconds;
  }
}

// biome-ignore lint/suspicious/noExplicitAny: response bodies are free-form JSON in tests
type Json = any;

export interface Harness {
  server: RunningServer;
  url: string;
  clock: TestClock;
  admin: string;
  logs: Record<string, unknown>[];
  dir: string;
  call(
    method: string,
    path: string,
    token?: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: Json; headers: Headers }>;
  principal(name: string, roles: string[]): Promise<{ id: string; token: string }>;
}

/** Starts a real server on a loopback port with a temp data dir (SQLite unless `database`). */
export async function startHarness(
  o: { database?: DatabaseConfig; options?: Record<string, unknown> } = {},
): Promise<Harness> {
  const dir = await tempDir("mv-server-");
  const clock = new TestClock();
  const logs: Record<string, unknown>[] = [];
  const server = await startServer({
    dataDir: dir,
    port: 0,
    now: clock.now,
    log: (e) => logs.push(e),
    ...(o.database ? { database: o.database } : {}),
    ...o.options,
  });
  cleanup(() => server.close());
  const boot = await bootstrapAdmin(server.ctx);
  const call: Harness["call"] = async (method, path, token, body, headers = {}) => {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {}
    return { status: res.status, body: parsed, headers: res.headers };
  };
  const h: Harness = {
    server,
    url: server.url,
    clock,
    admin: boot?.token ?? "",
    logs,
    dir,
    call,
    async principal(name, roles) {
      const p = await call("POST", "/v1/admin/principals", h.admin, { name, roles });
      if (p.status !== 201) throw new Error(`create principal: ${JSON.stringify(p.body)}`);
      const k = await call("POST", `/v1/admin/principals/${p.body.id}/api-keys`, h.admin);
      return { id: p.body.id, token: k.body.token };
    },
  };
  return h;
}

/** Packs digits (or `o.id`) as version `version`, trusts a new publisher key for `publisher` and registers the model. */
export async function registerDigits(
  h: Harness,
  publisher: { id: string; token: string },
  version = 1,
  o: {
    id?: string;
    keys?: { privateJwk: EcJwk; publicJwk: EcJwk };
    outputPolicy?: Record<string, number>;
    monitoring?: PackOptions["monitoring"];
    trace?: { slots: number; keyOut: string; strength?: number };
    modelPath?: string;
  } = {},
) {
  const keys = o.keys ?? (await generateKeyPairJwk("sig"));
  const jwks = (await h.call("GET", "/.well-known/jwks.json")).body;
  const registrationKey = jwks.keys.find((k: { use: string }) => k.use === "enc");
  const trusted = await h.call("POST", "/v1/admin/publisher-keys", h.admin, {
    jwk: keys.publicJwk,
    principalId: publisher.id,
  });
  if (trusted.status !== 201) throw new Error(`publisher key: ${JSON.stringify(trusted.body)}`);
  const id = o.id ?? "digits";
  const dir = join(h.dir, `${id}-v${version}-${Math.random().toString(36).slice(2)}`);
  const { manifest, digest } = await packAndRegister(apiCall(h.url), {
    publisherToken: publisher.token,
    signingKey: keys.privateJwk,
    registrationKey,
    modelPath: o.modelPath ?? DIGITS,
    id,
    version,
    outDir: dir,
    ...(o.outputPolicy ? { outputPolicy: o.outputPolicy } : {}),
    ...(o.monitoring ? { monitoring: o.monitoring } : {}),
    ...(o.trace ? { trace: o.trace } : {}),
  });
  return { dir, manifest, digest, publisher: keys };
}

/** A device: non-extractable ECDSA + ECDH keys in Web Crypto, as the browser worker makes them. */
export class TestDevice {
  nonce: string | undefined;
  private constructor(
    public sign: { publicKey: CryptoKey; privateKey: CryptoKey },
    public signJwk: EcJwk,
    public jkt: string,
    public agree: { publicKey: CryptoKey; privateKey: CryptoKey },
    public agreeJwk: EcJwk,
    public akt: string,
  ) {}

  static async create(): Promise<TestDevice> {
    const sign = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, [
      "sign",
      "verify",
    ]);
    const agree = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, false, [
      "deriveKey",
    ]);
    const pub = async (k: CryptoKey) => {
      const j = await crypto.subtle.exportKey("jwk", k);
      return { kty: "EC", crv: "P-256", x: j.x as string, y: j.y as string } as EcJwk;
    };
    const signJwk = await pub(sign.publicKey);
    const agreeJwk = await pub(agree.publicKey);
    return new TestDevice(
      sign,
      signJwk,
      await jwkThumbprint(signJwk),
      agree,
      agreeJwk,
      await jwkThumbprint(agreeJwk),
    );
  }

  proof(h: Harness, over: Record<string, unknown> = {}) {
    return createDpopProof(this.sign.privateKey, this.signJwk, {
      htm: "POST",
      htu: `${h.url}/v1/licenses`,
      akt: this.akt,
      iat: h.clock.now(),
      ...(this.nonce ? { nonce: this.nonce } : {}),
      ...over,
    });
  }

  /** Requests a license, retrying once with the server's nonce as RFC 9449 §8 describes. */
  async license(h: Harness, token: string, body: Record<string, unknown>) {
    for (let attempt = 0; attempt < 2; attempt++) {
      const r = await h.call(
        "POST",
        "/v1/licenses",
        token,
        { agreementKey: this.agreeJwk, ...body },
        { dpop: await this.proof(h) },
      );
      const nonce = r.headers.get("dpop-nonce");
      if (nonce) this.nonce = nonce;
      if (r.body?.error?.code !== "ERR_DPOP_NONCE_REQUIRED") return r;
    }
    throw new Error("nonce retry failed");
  }
}

/** Grants the standard test entitlement to a client. */
export async function grant(
  h: Harness,
  licensorToken: string,
  principalId: string,
  over: Record<string, unknown> = {},
) {
  const r = await h.call("POST", "/v1/entitlements", licensorToken, {
    principalId,
    modelId: "digits",
    scopes: ["infer", "offline"],
    quota: 1000,
    periodSeconds: 86400,
    licenseAllowance: 100,
    maxDevices: 3,
    licenseTtlSeconds: 600,
    offlineSeconds: 3600,
    expiresAt: h.clock.now() + 30 * 86400,
    ...over,
  });
  if (r.status !== 201) throw new Error(`grant: ${JSON.stringify(r.body)}`);
  return r.body.id as string;
}
