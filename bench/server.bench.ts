/**
 * `npm run bench:server`: license issuance and usage ingestion under sustained load on loopback,
 * next to the pure crypto cost of one issuance looped here, for each deployment: SQLite (one
 * instance), and with MODELVAULT_TEST_PG_URL (or MODELVAULT_BENCH_PG_URL) set, PostgreSQL with
 * one and with three instances on a fresh database. Also measures what one shared counter
 * update costs (the price of rate limits shared through the database) and the bytes each
 * stored row takes. Targets (issue #3): issuance >= 50% of the crypto bound, p99 <= 50 ms at
 * 80% of peak; usage ingestion >= 2,000 reports/s on SQLite. MODELVAULT_BENCH_SECONDS (10)
 * sets each load phase; MODELVAULT_BENCH_TARGETS (sqlite,pg1,pg3) picks deployments.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { EmbeddedJWK, jwtVerify, SignJWT } from "jose";
import pg from "pg";
import { cekWrapInfo, wrapContentKeyForDevice } from "../src/core/cek-wrap.js";
import { appendAudit } from "../src/server/audit/audit-log.js";
import { type DatabaseConfig, openDatabase } from "../src/server/db/open-database.js";
import { LocalKek } from "../src/server/keys/kek.js";
import { TestDevice } from "../test/server/harness.js";
import { sampleWaits } from "./pg-waits.js";
import {
  ingestion,
  issuance,
  type LoadResult,
  provisionBench,
  REPORTS_PER_BATCH,
} from "./server-scenario.js";
import { storageBytes } from "./storage-bytes.js";

const SECONDS = Number(process.env.MODELVAULT_BENCH_SECONDS ?? 10);
const PG_URL = process.env.MODELVAULT_BENCH_PG_URL ?? process.env.MODELVAULT_TEST_PG_URL;
const TARGETS = (process.env.MODELVAULT_BENCH_TARGETS ?? (PG_URL ? "sqlite,pg1,pg3" : "sqlite")).split(",");
const PUBLIC = "http://modelvault.bench";
const f = (n: number) => n.toFixed(0);

function startChild(dataDir: string, env: Record<string, string>) {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", fileURLToPath(new URL("./server-child.ts", import.meta.url)), dataDir],
    {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, ...env, MODELVAULT_BENCH_PUBLIC_URL: PUBLIC },
    },
  );
  return new Promise<{ child: ChildProcess; url: string; admin?: string }>((resolve) =>
    child.stdout?.once("data", (d) => resolve({ child, ...JSON.parse(String(d)) })),
  );
}

/** One issuance's crypto, looped: DPoP verify + KEK decrypt + ECDH/HKDF/AES-KW wrap + ES256 sign. */
async function cryptoBound(): Promise<number> {
  const device = await TestDevice.create();
  const kek = await LocalKek.fromBytes("k", crypto.getRandomValues(new Uint8Array(32)));
  const sealed = await kek.encrypt(crypto.getRandomValues(new Uint8Array(32)), "ctx");
  const { privateKey } = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, [
    "sign",
  ]);
  const h = { url: PUBLIC, clock: { now: () => Math.floor(Date.now() / 1000) } } as never;
  const proofs = await Promise.all(
    Array.from({ length: 3000 }, (_, i) => device.proof(h, { jti: `bench-jti-${i}-0000000` })),
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

/**
 * What shared counters cost: reading the failed-authentication counters (done before every
 * authentication), and one counter update (an upsert transaction) alone and ten at a time.
 */
async function counterCost(
  config: DatabaseConfig,
): Promise<{ readMs: number; serialMs: number; parallelPerSecond: number }> {
  const db = await openDatabase(config);
  const upsert = (key: string) =>
    db.kysely
      .insertInto("auth_failures")
      .values({ key, window_start: 0, failures: 1 })
      .onConflict((oc) =>
        oc
          .columns(["key", "window_start"])
          .doUpdateSet((eb) => ({ failures: eb("auth_failures.failures", "+", 1) })),
      )
      .execute();
  let started = performance.now();
  for (let i = 0; i < 500; i++)
    await db.kysely
      .selectFrom("auth_failures")
      .select(["key", "failures"])
      .where("window_start", "=", 0)
      .where("key", "in", [`addr:${i}`, `key:${i}`, `pair:${i}`])
      .execute();
  const readMs = (performance.now() - started) / 500;
  started = performance.now();
  for (let i = 0; i < 500; i++) await upsert(`bench:${i % 20}`);
  const serialMs = (performance.now() - started) / 500;
  started = performance.now();
  await Promise.all(
    Array.from({ length: 10 }, async (_, w) => {
      for (let i = 0; i < 100; i++) await upsert(`bench:${w}`);
    }),
  );
  const parallelPerSecond = 1000 / ((performance.now() - started) / 1000);
  await db.kysely.deleteFrom("auth_failures").where("window_start", "=", 0).execute();
  await db.close();
  return { readMs, serialMs, parallelPerSecond };
}

/**
 * The ceiling of the audit chain: every audited write (a license, an accepted report, a denial)
 * takes the one audit head row in turn and keeps it until its commit. Ten writers, each
 * committing transactions that only append one entry.
 */
async function auditCeiling(config: DatabaseConfig): Promise<number> {
  const db = await openDatabase(config);
  const event = { actor: "bench", action: "bench", outcome: "success" as const, subject: "-" };
  const started = performance.now();
  await Promise.all(
    Array.from({ length: 10 }, async () => {
      for (let i = 0; i < 100; i++)
        await db.transaction((tx) => appendAudit(tx, event, Math.floor(Date.now() / 1000)));
    }),
  );
  const perSecond = 1000 / ((performance.now() - started) / 1000);
  await db.close();
  return perSecond;
}

async function scenario(name: string, instances: number, database?: string) {
  const dataDir = await mkdtemp(join(tmpdir(), "mv-bench-"));
  const env: Record<string, string> = database ? { MODELVAULT_DATABASE_URL: database } : {};
  const first = await startChild(dataDir, env);
  const rest = await Promise.all(Array.from({ length: instances - 1 }, () => startChild(dataDir, env)));
  const children = [first, ...rest];
  try {
    const urls = children.map((c) => c.url);
    const s = await provisionBench(first.url, first.admin as string, PUBLIC);
    await issuance(s, urls, { seconds: 2 }); // warm-up
    const peak = await issuance(s, urls, { seconds: SECONDS });
    const at80 = await issuance(s, urls, { seconds: SECONDS, rate: Math.floor(peak.rps * 0.8) });
    const waits = database ? sampleWaits(database) : undefined;
    const usage = await ingestion(s, urls);
    const waited = await waits?.stop();
    const config: DatabaseConfig = database
      ? { kind: "postgres", url: database, poolSize: 10 }
      : { kind: "sqlite", file: join(dataDir, "modelvault.sqlite") };
    const counter = await counterCost(config);
    const audit = await auditCeiling(config);
    const bytes = await storageBytes(config);
    return { name, peak, at80, usage, counter, audit, bytes, waited };
  } finally {
    for (const c of children) c.child.kill("SIGTERM");
    await Promise.all(children.map((c) => new Promise((r) => c.child.once("exit", r))));
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function withDatabase<T>(fn: (url: string) => Promise<T>): Promise<T> {
  const name = `mv_bench_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  const url = new URL(PG_URL as string);
  url.pathname = `/${name}`;
  try {
    return await fn(url.toString());
  } finally {
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.end();
  }
}

const bound = await cryptoBound();
console.log(
  `crypto bound of one issuance (DPoP verify + KEK + ECDH/HKDF/AES-KW wrap + ES256 sign, 1 thread): ${f(bound)} /s`,
);
const results: Awaited<ReturnType<typeof scenario>>[] = [];
for (const target of TARGETS) {
  const r =
    target === "sqlite"
      ? await scenario("SQLite, 1 instance", 1)
      : await withDatabase((url) =>
          scenario(`PostgreSQL, ${target === "pg3" ? 3 : 1} instance(s)`, target === "pg3" ? 3 : 1, url),
        );
  results.push(r);
  const line = (what: string, x: LoadResult) =>
    `${what}: ${f(x.rps)}/s, p50 ${x.p50} ms, p99 ${x.p99} ms, non-2xx ${x.non2xx}${x.non2xx ? ` ${JSON.stringify(x.statuses)}` : ""}, errors ${x.errors}`;
  console.log(`\n${r.name}`);
  console.log(`  ${line("issuance at peak (10 connections per instance)", r.peak)}`);
  console.log(
    `  ratio issuance/crypto bound: ${(r.peak.rps / bound).toFixed(2)}  (target >= 0.50 for one instance)`,
  );
  console.log(
    `  ${line(`issuance at 80% of peak (${f(r.peak.rps * 0.8)}/s offered)`, r.at80)}  (target p99 <= 50 ms)`,
  );
  console.log(
    `  ${line(`usage ingestion, reports (${REPORTS_PER_BATCH} per request)`, r.usage)}  (target >= 2000 on SQLite)`,
  );
  console.log(
    `  shared counters: read ${r.counter.readMs.toFixed(2)} ms; one update (upsert transaction) ${r.counter.serialMs.toFixed(2)} ms alone, ${f(r.counter.parallelPerSecond)}/s ten at a time`,
  );
  console.log(`  audit chain ceiling (transactions appending one entry, ten writers): ${f(r.audit)}/s`);
  if (r.waited) {
    const total = Object.values(r.waited).reduce((a, b) => a + b, 0) || 1;
    const top = Object.entries(r.waited)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 4)
      .map(([what, n]) => `${what} ${((100 * n) / total).toFixed(0)}%`);
    console.log(`  during ingestion, busy PostgreSQL backends were: ${top.join(", ")}`);
  }
  console.log(
    `  bytes per row (table + indexes): ${Object.entries(r.bytes)
      .map(([t, b]) => `${t} ${f(b)}`)
      .join(", ")}`,
  );
}
const by = (name: string) => results.find((r) => r.name.startsWith(name));
const sqlite = by("SQLite");
const pg1 = by("PostgreSQL, 1");
const pg3 = by("PostgreSQL, 3");
if (sqlite && pg1)
  console.log(
    `\nratios PostgreSQL 1 / SQLite: issuance ${(pg1.peak.rps / sqlite.peak.rps).toFixed(2)}, ingestion ${(pg1.usage.rps / sqlite.usage.rps).toFixed(2)}`,
  );
if (pg1 && pg3)
  console.log(
    `ratios PostgreSQL 3 / 1 instance(s): issuance ${(pg3.peak.rps / pg1.peak.rps).toFixed(2)}, ingestion ${(pg3.usage.rps / pg1.usage.rps).toFixed(2)}  (same 2-core host: instances share its CPUs)`,
  );
