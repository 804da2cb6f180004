/**
 * One bench:server scenario against one or more instances of a deployment: license issuance
 * under autocannon (one autocannon per instance, in parallel) and usage ingestion from ten
 * concurrent senders spread over the instances.
 */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import { apiCall, createPrincipal, packAndRegister } from "../scripts/provision.js";
import type { EcJwk } from "../src/core/jwk.js";
import { signUsageReport, usageGenesis, usageReportHash } from "../src/core/usage-report.js";
import { generateKeyPairJwk } from "../src/pack/keygen.js";
import { grant, TestDevice } from "../test/server/harness.js";

export const REPORTS_PER_BATCH = 25;
const model = { id: "digits", version: 1 };
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
  /** Responses by status, when any was not 2xx. */
  statuses?: Record<string, number>;
}

/** What requests need: a client with a huge entitlement, the model's digest, a harness-like view for proofs. */
export async function provisionBench(url: string, admin: string, publicUrl: string) {
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
  // Proofs name the public origin (htu); requests go to any instance.
  const h = {
    url: publicUrl,
    clock: { now: () => Math.floor(Date.now() / 1000) },
    call: (m: string, p: string, t?: string, b?: unknown) =>
      fetch(`${url}${p}`, {
        method: m,
        headers: { ...(t ? { authorization: `Bearer ${t}` } : {}), "content-type": "application/json" },
        ...(b !== undefined ? { body: JSON.stringify(b) } : {}),
      }).then(async (r) => ({ status: r.status, body: await r.json(), headers: r.headers })),
  } as never;
  await grant(h, licensor.token, client.id, { maxDevices: 100_000, quota: 1e12, licenseAllowance: 1e6 });
  const nonce = async () =>
    (
      await fetch(`${url}/v1/licenses`, {
        method: "POST",
        headers: { authorization: `Bearer ${client.token}`, "content-type": "application/json" },
        body: "{}",
      })
    ).headers.get("dpop-nonce") as string;
  return { client, digest, h, nonce };
}

type Setup = Awaited<ReturnType<typeof provisionBench>>;

/** License issuance against every instance at once: 64 devices renewing, each request with its own proof. */
export async function issuance(
  s: Setup,
  urls: string[],
  opts: { seconds: number; rate?: number },
): Promise<LoadResult> {
  const devices = await Promise.all(Array.from({ length: 64 }, () => TestDevice.create()));
  const nonce = await s.nonce();
  const count = Math.ceil((opts.rate ?? 1500) * opts.seconds * 1.2);
  const prepared = await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const d = devices[i % devices.length] as TestDevice;
      d.nonce = nonce;
      const dpop = await d.proof(s.h);
      return { dpop, body: JSON.stringify({ model, manifestDigest: s.digest, agreementKey: d.agreeJwk }) };
    }),
  );
  let i = 0;
  const results = await Promise.all(
    urls.map(
      (url) =>
        autocannon({
          url: `${url}/v1/licenses`,
          connections: 10,
          duration: opts.seconds,
          ...(opts.rate ? { overallRate: Math.max(1, Math.floor(opts.rate / urls.length)) } : {}),
          requests: [
            {
              method: "POST",
              setupRequest: (req: Record<string, unknown>) => {
                const p = prepared[i++ % prepared.length] as { dpop: string; body: string };
                return {
                  ...req,
                  headers: {
                    authorization: `Bearer ${s.client.token}`,
                    "content-type": "application/json",
                    dpop: p.dpop,
                  },
                  body: p.body,
                };
              },
            },
          ],
        } as never) as unknown as Promise<{
          requests: { average: number };
          latency: { p50: number; p99: number };
          non2xx: number;
          errors: number;
          statusCodeStats: Record<string, { count: number }>;
        }>,
    ),
  );
  return {
    rps: results.reduce((n, r) => n + r.requests.average, 0),
    // Per-instance percentiles combined: the median p50 and the worst p99 (conservative).
    p50: median(results.map((r) => r.latency.p50)),
    p99: Math.max(...results.map((r) => r.latency.p99)),
    non2xx: results.reduce((n, r) => n + r.non2xx, 0),
    errors: results.reduce((n, r) => n + r.errors, 0),
    statuses: results.reduce<Record<string, number>>((acc, r) => {
      for (const [code, { count }] of Object.entries(r.statusCodeStats ?? {}))
        acc[code] = (acc[code] ?? 0) + count;
      return acc;
    }, {}),
  };
}

/** Usage ingestion: each request carries one fresh device's chain of 25 reports; ten senders. */
export async function ingestion(s: Setup, urls: string[], devices = 400): Promise<LoadResult> {
  const nonce = await s.nonce();
  const bodies: string[] = [];
  for (let n = 0; n < devices; n++) {
    const d = await TestDevice.create();
    d.nonce = nonce;
    const res = await fetch(`${urls[n % urls.length]}/v1/licenses`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${s.client.token}`,
        "content-type": "application/json",
        dpop: await d.proof(s.h),
      },
      body: JSON.stringify({ model, manifestDigest: s.digest, agreementKey: d.agreeJwk }),
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
    bodies.push(JSON.stringify({ reports }));
  }
  // Timed here to the millisecond (autocannon's `amount` mode only ends on its one-second ticks).
  let u = 0;
  const latencies: number[] = [];
  let non2xx = 0;
  const statuses: Record<string, number> = {};
  const started = performance.now();
  await Promise.all(
    Array.from({ length: 10 }, async (_, sender) => {
      while (u < bodies.length) {
        const body = bodies[u++] as string;
        const t = performance.now();
        const res = await fetch(`${urls[sender % urls.length]}/v1/usage`, {
          method: "POST",
          headers: { authorization: `Bearer ${s.client.token}`, "content-type": "application/json" },
          body,
        });
        await res.arrayBuffer();
        if (!res.ok) non2xx++;
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
        latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((x, y) => x - y);
  return {
    rps: (latencies.length * REPORTS_PER_BATCH) / seconds,
    p50: Math.round(latencies[Math.floor(latencies.length * 0.5)] as number),
    p99: Math.round(latencies[Math.floor(latencies.length * 0.99)] as number),
    non2xx,
    errors: 0,
    statuses,
  };
}
