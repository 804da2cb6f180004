/**
 * `npm run bench:server`: license issuance and usage ingestion under sustained load from this
 * process against the server in a child process on loopback (autocannon), next to the pure
 * crypto cost of one issuance looped here. Targets (issue #3): issuance >= 50% of the crypto
 * bound, p99 <= 50 ms at 80% of peak; usage ingestion >= 2,000 reports/s on SQLite.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import { EmbeddedJWK, jwtVerify, SignJWT } from "jose";
import { apiCall, createPrincipal, packAndRegister } from "../scripts/provision.js";
import { cekWrapInfo, wrapContentKeyForDevice } from "../src/core/cek-wrap.js";
import type { EcJwk } from "../src/core/jwk.js";
import { signUsageReport, usageGenesis, usageReportHash } from "../src/core/usage-report.js";
import { generateKeyPairJwk } from "../src/pack/keygen.js";
import { LocalKek } from "../src/server/keys/kek.js";
import { grant, TestDevice } from "../test/server/harness.js";

const SECONDS = Number(process.env.MODELVAULT_BENCH_SECONDS ?? 10);
const REPORTS_PER_BATCH = 25;

async function startChild(): Promise<{ child: ChildProcess; url: string; admin: string }> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", fileURLToPath(new URL("./server-child.ts", import.meta.url))],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const line = await new Promise<string>((resolve) => child.stdout?.once("data", (d) => resolve(String(d))));
  return { child, ...JSON.parse(line) };
}

async function api(url: string, token: string, method: string, path: string, body?: unknown) {
  const r = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: r.status, body: (await r.json()) as { id?: string; token?: string }, headers: r.headers };
}

/** One issuance's crypto, looped: DPoP verify + KEK decrypt + ECDH/HKDF/AES-KW wrap + ES256 sign. */
async function cryptoBound(device: TestDevice, url: string): Promise<number> {
  const kek = await LocalKek.fromBytes("k", crypto.getRandomValues(new Uint8Array(32)));
  const sealed = await kek.encrypt(crypto.getRandomValues(new Uint8Array(32)), "ctx");
  const { privateKey } = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, [
    "sign",
  ]);
  const proofs = await Promise.all(
    Array.from({ length: 3000 }, (_, i) =>
      device.proof({ url, clock: { now: () => Math.floor(Date.now() / 1000) } } as never, {
        jti: `bench-jti-${i}-0000000`,
      }),
    ),
  );
  const one = async (proof: string) => {
    await jwtVerify(proof, EmbeddedJWK, { algorithms: ["ES256"], typ: "dpop+jwt" });
    const cek = await kek.decrypt(sealed, "ctx");
    const wrap = await wrapContentKeyForDevice(cek, device.agreeJwk, cekWrapInfo("jti", "digits", 1));
    await new SignJWT({ cek: wrap, sub: "x" })
      .setProtectedHeader({ alg: "ES256", typ: "license+jwt" })
      .sign(privateKey);
  };
  for (const p of proofs.slice(0, 300)) await one(p);
  const started = performance.now();
  for (const p of proofs.slice(300)) await one(p);
  return (proofs.length - 300) / ((performance.now() - started) / 1000);
}

const { child, url, admin } = await startChild();
try {
  const h = {
    url,
    admin,
    clock: { now: () => Math.floor(Date.now() / 1000) },
    call: (m: string, p: string, t?: string, b?: unknown, hd?: Record<string, string>) =>
      fetch(`${url}${p}`, {
        method: m,
        headers: {
          ...(t ? { authorization: `Bearer ${t}` } : {}),
          "content-type": "application/json",
          ...hd,
        },
        ...(b !== undefined ? { body: JSON.stringify(b) } : {}),
      }).then(async (r) => ({ status: r.status, body: await r.json(), headers: r.headers })),
  } as never;
  const call = apiCall(url);
  const publisher = await createPrincipal(call, admin, "pub", ["publisher"]);
  const licensor = await createPrincipal(call, admin, "lic", ["licensor"]);
  const client = await createPrincipal(call, admin, "client", ["client"]);
  const keys = await generateKeyPairJwk("sig");
  await call(admin, "POST", "/v1/admin/publisher-keys", { jwk: keys.publicJwk, principalId: publisher.id });
  const jwks = (await (await fetch(`${url}/.well-known/jwks.json`)).json()) as { keys: EcJwk[] };
  const { digest } = await packAndRegister(call, {
    publisherToken: publisher.token,
    signingKey: keys.privateJwk,
    registrationKey: jwks.keys.find((k) => k.use === "enc") as EcJwk,
    modelPath: fileURLToPath(new URL("../models/digits/digits.onnx", import.meta.url)),
    id: "digits",
    version: 1,
    outDir: await mkdtemp(join(tmpdir(), "mv-bench-pkg-")),
  });
  await grant(h, licensor.token, client.id, { maxDevices: 100_000, quota: 1e12, licenseAllowance: 1e6 });
  const model = { id: "digits", version: 1 };

  // Crypto bound, in this process.
  const bound = await cryptoBound(await TestDevice.create(), url);

  // Issuance: 64 devices renewing, each request with its own pre-signed proof.
  const devices = await Promise.all(Array.from({ length: 64 }, () => TestDevice.create()));
  const nonce = (await api(url, client.token, "POST", "/v1/licenses", {})).headers.get(
    "dpop-nonce",
  ) as string;
  const makeRequests = async (n: number) =>
    Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const d = devices[i % devices.length] as TestDevice;
        d.nonce = nonce;
        const dpop = await d.proof(h);
        return { dpop, body: JSON.stringify({ model, manifestDigest: digest, agreementKey: d.agreeJwk }) };
      }),
    );
  const run = async (opts: { rate?: number; seconds: number }) => {
    const prepared = await makeRequests(Math.ceil((opts.rate ?? 1500) * opts.seconds * 1.2));
    let i = 0;
    const result = await autocannon({
      url: `${url}/v1/licenses`,
      connections: 10,
      duration: opts.seconds,
      ...(opts.rate ? { overallRate: opts.rate } : {}),
      requests: [
        {
          method: "POST",
          setupRequest: (req: Record<string, unknown>) => {
            const p = prepared[i++ % prepared.length] as { dpop: string; body: string };
            return {
              ...req,
              headers: {
                authorization: `Bearer ${client.token}`,
                "content-type": "application/json",
                dpop: p.dpop,
              },
              body: p.body,
            };
          },
        },
      ],
    } as never);
    return result as unknown as {
      requests: { average: number };
      latency: { p50: number; p99: number };
      non2xx: number;
      errors: number;
    };
  };
  await run({ seconds: 2 }); // warm-up
  const peak = await run({ seconds: SECONDS });
  const at80 = await run({ seconds: SECONDS, rate: Math.floor(peak.requests.average * 0.8) });

  // Usage ingestion: each request carries one fresh device's chain of 25 reports.
  const freshNonce = (await api(url, client.token, "POST", "/v1/licenses", {})).headers.get(
    "dpop-nonce",
  ) as string;
  const reporters = await Promise.all(
    Array.from({ length: 400 }, async () => {
      const d = await TestDevice.create();
      d.nonce = freshNonce;
      return { d };
    }),
  ).then(async (list) => {
    const out: string[] = [];
    for (const { d } of list) {
      const res = await fetch(`${url}/v1/licenses`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${client.token}`,
          "content-type": "application/json",
          dpop: await d.proof(h),
        },
        body: JSON.stringify({ model, manifestDigest: digest, agreementKey: d.agreeJwk }),
      });
      const lic = (await res.json()) as { license: string };
      if (!lic.license) throw new Error(`license for the usage bench: ${JSON.stringify(lic)}`);
      const jti = JSON.parse(Buffer.from(lic.license.split(".")[1] as string, "base64url").toString()).jti;
      let prev = await usageGenesis(d.jkt);
      const reports: string[] = [];
      for (let seq = 1; seq <= REPORTS_PER_BATCH; seq++) {
        const t = Math.floor(Date.now() / 1000);
        const token = await signUsageReport(d.sign.privateKey, d.jkt, {
          lic: jti,
          seq,
          prev,
          count: 1,
          from: t - 1,
          to: t,
          iat: t,
        });
        prev = await usageReportHash(token);
        reports.push(token);
      }
      out.push(JSON.stringify({ reports }));
    }
    return out;
  });
  // Ten concurrent senders over keep-alive connections; timed here to the millisecond (autocannon's
  // `amount` mode only ends on its one-second sampling ticks).
  let u = 0;
  const latencies: number[] = [];
  let non2xx = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: 10 }, async () => {
      while (u < reporters.length) {
        const body = reporters[u++] as string;
        const t = performance.now();
        const res = await fetch(`${url}/v1/usage`, {
          method: "POST",
          headers: { authorization: `Bearer ${client.token}`, "content-type": "application/json" },
          body,
        });
        await res.arrayBuffer();
        if (!res.ok) non2xx++;
        latencies.push(performance.now() - t);
      }
    }),
  );
  const usageSeconds = (performance.now() - started) / 1000;
  latencies.sort((x, y) => x - y);
  const usage = {
    requests: { total: latencies.length },
    latency: {
      p50: Math.round(latencies[Math.floor(latencies.length * 0.5)] as number),
      p99: Math.round(latencies[Math.floor(latencies.length * 0.99)] as number),
    },
    non2xx,
  };
  const reportsPerSecond = (usage.requests.total * REPORTS_PER_BATCH) / usageSeconds;

  const f = (n: number) => n.toFixed(0);
  console.log(
    `crypto bound of one issuance (DPoP verify + KEK + ECDH/HKDF/AES-KW wrap + ES256 sign, 1 thread): ${f(bound)} /s`,
  );
  console.log(
    `issuance at peak (10 connections): ${f(peak.requests.average)} req/s, p50 ${peak.latency.p50} ms, p99 ${peak.latency.p99} ms, non-2xx ${peak.non2xx}, errors ${peak.errors}`,
  );
  console.log(`ratio issuance/crypto bound: ${(peak.requests.average / bound).toFixed(2)}  (target >= 0.50)`);
  console.log(
    `issuance at 80% of peak (${f(peak.requests.average * 0.8)} req/s offered): ${f(at80.requests.average)} req/s, p50 ${at80.latency.p50} ms, p99 ${at80.latency.p99} ms  (target p99 <= 50 ms), non-2xx ${at80.non2xx}`,
  );
  console.log(
    `usage ingestion on SQLite: ${f(reportsPerSecond)} reports/s (${REPORTS_PER_BATCH} per request), p50 ${usage.latency.p50} ms, p99 ${usage.latency.p99} ms, non-2xx ${usage.non2xx}  (target >= 2000)`,
  );
} finally {
  child.kill("SIGTERM");
}
