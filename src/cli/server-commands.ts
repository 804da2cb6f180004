import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { JSONWebKeySet } from "jose";
import { fromBase64Url, fromUtf8 } from "../core/bytes.js";
import { ModelVaultError } from "../core/errors.js";
import type { AuditEntry } from "../server/audit/audit-chain.js";
import { auditEntries, checkpointTokens } from "../server/audit/read-audit.js";
import { verifyAuditLog } from "../server/audit/verify-audit.js";
import { bootstrapAdmin } from "../server/bootstrap.js";
import { type Db, openDatabase } from "../server/db/open-database.js";
import { startServer } from "../server/start-server.js";
import { api } from "./api-client.js";
import type { CliIo } from "./io.js";
import { type Args, optional, required } from "./parse.js";

/** `modelvault serve`: runs until SIGINT/SIGTERM, then shuts down gracefully. */
export async function serveCommand(args: Args, io: CliIo): Promise<void> {
  const dataDir = optional(args, "data") ?? ".data/server";
  const cert = optional(args, "tls-cert");
  const key = optional(args, "tls-key");
  const pg = optional(args, "postgres") ?? io.env.MODELVAULT_DATABASE_URL;
  const consoleDir = optional(args, "console");
  const server = await startServer({
    dataDir,
    host: optional(args, "host") ?? "127.0.0.1",
    port: Number(optional(args, "port") ?? 8787),
    ...(cert && key ? { tls: { certFile: cert, keyFile: key } } : {}),
    ...(optional(args, "public-url") ? { publicUrl: optional(args, "public-url") } : {}),
    ...(pg ? { database: { kind: "postgres" as const, url: pg } } : {}),
    corsOrigins: (optional(args, "cors") ?? "").split(",").filter(Boolean),
    trustProxy: (optional(args, "trust-proxy") ?? "").split(",").filter(Boolean),
    ...(consoleDir !== undefined ? { consoleDir: consoleDir === "off" ? false : consoleDir } : {}),
    env: io.env,
  });
  await bootstrapAdmin(server.ctx, {
    show(token) {
      io.err("Bootstrap admin API key (shown once; store it now, it is kept only as a hash):");
      io.out(token);
    },
  });
  io.err(
    `modelvault license server on ${server.url} (data in ${dataDir}${pg ? ", PostgreSQL" : ", SQLite"})`,
  );
  if (server.ctx.options.consoleDir) io.err(`operations console: ${server.url}/console/`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  io.err("shutting down: finishing in-flight requests, checkpointing the audit log");
  await server.close();
}

export async function adminCommand(args: Args, io: CliIo): Promise<void> {
  const [what, verb, target] = args.positionals;
  if (what === "principal" && verb === "create") {
    const roles = (optional(args, "roles") ?? "").split(",").filter(Boolean);
    const p = await api(io, "POST", "/v1/admin/principals", { name: required(args, "name"), roles });
    io.out(String(p.id));
  } else if (what === "principal" && verb === "list") {
    io.out(JSON.stringify((await api(io, "GET", "/v1/admin/principals")).principals, null, 2));
  } else if (what === "principal" && verb === "roles" && target) {
    await api(io, "PUT", `/v1/admin/principals/${encodeURIComponent(target)}/roles`, {
      roles: required(args, "roles").split(",").filter(Boolean),
    });
    io.out(`roles of ${target} set`);
  } else if (what === "key" && verb === "create" && target) {
    const k = await api(io, "POST", `/v1/admin/principals/${encodeURIComponent(target)}/api-keys`);
    io.err(`API key ${k.id} for ${target} (shown once):`);
    io.out(String(k.token));
  } else if (what === "key" && verb === "revoke" && target) {
    await api(io, "DELETE", `/v1/admin/api-keys/${encodeURIComponent(target)}`);
    io.out(`revoked ${target}`);
  } else if (what === "publisher-key" && verb === "add" && target) {
    const r = await api(io, "POST", "/v1/admin/publisher-keys", {
      jwk: JSON.parse(await readFile(target, "utf8")),
      principalId: required(args, "principal"),
    });
    io.out(`trusted publisher key ${r.kid} for ${r.owner}`);
  } else if (what === "publisher-key" && verb === "revoke" && target) {
    // --own: a publisher revoking its own key with its own API key (no admin needed).
    const path =
      args.own === true
        ? `/v1/publisher-keys/${encodeURIComponent(target)}/revoke`
        : `/v1/admin/publisher-keys/${encodeURIComponent(target)}/revoke`;
    await api(io, "POST", path, { reason: required(args, "reason") });
    io.out(`revoked publisher key ${target}: nothing it signed is registered or licensed any more`);
  } else if (what === "model" && verb === "owner" && target) {
    await api(io, "PUT", `/v1/admin/models/${encodeURIComponent(target)}/owner`, {
      principalId: required(args, "principal"),
    });
    io.out(`model id ${target} now belongs to ${required(args, "principal")}`);
  } else if (what === "model" && verb === "retire" && target && args.positionals[3]) {
    const version = args.positionals[3];
    await api(
      io,
      "POST",
      `/v1/admin/models/${encodeURIComponent(target)}/versions/${encodeURIComponent(version)}/retire`,
      { reason: required(args, "reason") },
    );
    io.out(`retired ${target} v${version}`);
  } else if (what === "signing-key" && verb === "rotate") {
    io.out(JSON.stringify(await api(io, "POST", "/v1/admin/signing-keys/rotate")));
  } else {
    throw new ModelVaultError(
      "ERR_CLI_USAGE",
      "admin principal create|list|roles, key create|revoke, publisher-key add|revoke, model owner|retire, signing-key rotate",
    );
  }
}

/** Whether a compact JWS manifest (not verified here: the server does) has a `trace` section. */
function isTraceable(jws: string): boolean {
  try {
    const payload = JSON.parse(fromUtf8(fromBase64Url(jws.trim().split(".")[1] ?? ""))) as {
      trace?: unknown;
    };
    return payload.trace !== undefined;
  } catch {
    return false;
  }
}

export async function registerCommand(args: Args, io: CliIo): Promise<void> {
  const dir = args.positionals[0];
  if (!dir) throw new ModelVaultError("ERR_CLI_USAGE", "usage: modelvault register DIR");
  const manifest = await readFile(join(dir, "manifest.jws"), "utf8");
  const contentKey = await readFile(join(dir, "content-key.jwe"), "utf8");
  // A traceable package's trace secret, sealed to the server like the content key (docs/TRACING.md).
  const traceKey = await readFile(join(dir, "trace-key.jwe"), "utf8").catch(() => undefined);
  if (traceKey === undefined && isTraceable(manifest))
    throw new ModelVaultError(
      "ERR_TRACE_KEY_INVALID",
      `${join(dir, "trace-key.jwe")} is missing: a traceable package registers with its trace key (pack it again with --recipient)`,
    );
  const r = await api(io, "POST", "/v1/models", { manifest, contentKey, ...(traceKey ? { traceKey } : {}) });
  io.out(`registered ${r.id} v${r.version} (manifest digest ${r.manifestDigest})`);
}

export async function grantCommand(args: Args, io: CliIo): Promise<void> {
  const num = (name: string, fallback?: number) => {
    const v = optional(args, name);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isSafeInteger(n)) throw new ModelVaultError("ERR_CLI_USAGE", `--${name} must be an integer`);
    return n;
  };
  const days = num("days", 30) as number;
  const r = await api(io, "POST", "/v1/entitlements", {
    principalId: required(args, "principal"),
    modelId: required(args, "model"),
    ...(num("min-version") !== undefined ? { minVersion: num("min-version") } : {}),
    ...(num("max-version") !== undefined ? { maxVersion: num("max-version") } : {}),
    scopes: (optional(args, "scopes") ?? "infer").split(",").filter(Boolean),
    quota: num("quota"),
    periodSeconds: num("period", 86400),
    ...(num("allowance") !== undefined ? { licenseAllowance: num("allowance") } : {}),
    maxDevices: num("devices", 1),
    licenseTtlSeconds: num("ttl", 900),
    offlineSeconds: num("offline", 0),
    expiresAt: Math.floor(Date.now() / 1000) + days * 86400,
  });
  io.out(String(r.id));
}

export async function revokeCommand(args: Args, io: CliIo): Promise<void> {
  const [kind, target, device] = args.positionals;
  if (kind === "release" && target && device) {
    await api(
      io,
      "POST",
      `/v1/entitlements/${encodeURIComponent(target)}/devices/${encodeURIComponent(device)}/release`,
    );
    io.out(`released device ${device} from entitlement ${target}`);
    return;
  }
  const paths: Record<string, string> = {
    entitlement: "entitlements",
    device: "devices",
    license: "licenses",
  };
  if (!kind || !target || !paths[kind])
    throw new ModelVaultError(
      "ERR_CLI_USAGE",
      "usage: modelvault revoke entitlement|device|license ID | revoke release ENTITLEMENT DEVICE",
    );
  await api(io, "POST", `/v1/${paths[kind]}/${encodeURIComponent(target)}/revoke`);
  io.out(`revoked ${kind} ${target}`);
}

/**
 * Opens the database named by --db FILE (SQLite) or --postgres URL (else $MODELVAULT_DATABASE_URL)
 * read-only: no migrations, and PostgreSQL sessions refuse writes. Undefined for --export FILE.
 */
async function openAuditSource(args: Args, io: CliIo): Promise<Db | undefined> {
  const file = optional(args, "db");
  if (optional(args, "export") && !file && !optional(args, "postgres")) return undefined;
  const url = optional(args, "postgres") ?? (file ? undefined : io.env.MODELVAULT_DATABASE_URL);
  if (file && url) throw new ModelVaultError("ERR_CLI_USAGE", "give --db or --postgres, not both");
  if (file) {
    try {
      return await openDatabase({ kind: "sqlite", file }, { readOnly: true });
    } catch (cause) {
      if (cause instanceof ModelVaultError) throw cause;
      throw new Error(`cannot open SQLite database ${file}: ${(cause as Error).message}`);
    }
  }
  if (url) return openDatabase({ kind: "postgres", url, poolSize: 2 }, { readOnly: true });
  throw new ModelVaultError("ERR_CLI_USAGE", "give --db FILE (SQLite), --postgres URL or --export FILE");
}

/** Verifies the audit log where it lives, streaming entries; or an export made by `audit export`. */
async function verifyAudit(args: Args, io: CliIo, jwks: JSONWebKeySet, external: string[]) {
  const db = await openAuditSource(args, io);
  if (!db) {
    const file = required(args, "export");
    const exported = JSON.parse(await readFile(file, "utf8")) as {
      entries: AuditEntry[];
      checkpoints: string[];
    };
    return verifyAuditLog(exported.entries, [...exported.checkpoints, ...external], jwks);
  }
  try {
    return await verifyAuditLog(auditEntries(db), [...(await checkpointTokens(db)), ...external], jwks);
  } finally {
    await db.close();
  }
}

export async function auditCommand(args: Args, io: CliIo): Promise<void> {
  const verb = args.positionals[0];
  if (verb === "verify") {
    const extra = optional(args, "checkpoints");
    const external = extra ? (JSON.parse(await readFile(extra, "utf8")) as string[]) : [];
    const jwks = JSON.parse(await readFile(required(args, "jwks"), "utf8")) as JSONWebKeySet;
    const report = await verifyAudit(args, io, jwks, external);
    io.out(
      `ok: ${report.entries} entries chain correctly; ${report.checkpoints} checkpoints verify (latest covers ${report.latestCheckpoint ?? 0})`,
    );
  } else if (verb === "export") {
    const db = await openAuditSource(args, io);
    if (!db) throw new ModelVaultError("ERR_CLI_USAGE", "audit export reads --db FILE or --postgres URL");
    try {
      const entries: AuditEntry[] = [];
      for await (const e of auditEntries(db)) entries.push(e);
      io.out(JSON.stringify({ entries, checkpoints: await checkpointTokens(db) }));
    } finally {
      await db.close();
    }
  } else if (verb === "tail") {
    const n = Number(optional(args, "n") ?? 20);
    const all = (await api(io, "GET", "/v1/audit?limit=1000")).entries as AuditEntry[];
    for (const e of all.slice(-n))
      io.out(
        `${e.seq}\t${new Date(e.at * 1000).toISOString()}\t${e.actor}\t${e.action}\t${e.outcome}\t${e.subject}\t${e.detail}`,
      );
  } else {
    throw new ModelVaultError(
      "ERR_CLI_USAGE",
      "usage: modelvault audit verify (--db FILE | --postgres URL | --export FILE) --jwks FILE [--checkpoints FILE] | audit export (--db FILE | --postgres URL) | audit tail [--n N]",
    );
  }
}
