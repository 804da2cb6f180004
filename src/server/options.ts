import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The console the package ships: dist/console beside the bundled server (dist/*.js), or, run
 * from sources, the one the last `npm run build` made. False when neither exists.
 */
function defaultConsoleDir(): string | false {
  for (const rel of ["./console/", "../../dist/console/"]) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(join(dir, "index.html"))) return dir;
  }
  return false;
}

/** Where the server keeps its state: an embedded SQLite file, or PostgreSQL for several instances. */
export type DatabaseConfig =
  | { kind: "sqlite"; file: string }
  | { kind: "postgres"; url: string; poolSize?: number };

/** An OIDC issuer whose ID tokens are accepted as credentials. */
export interface OidcIssuer {
  issuer: string;
  audience: string;
  jwksUri: string;
}

/** Every server setting, explicit (no globals). See README "Server configuration". */
export interface ServerOptions {
  /** Data directory: SQLite file and key files. */
  dataDir: string;
  /** Defaults to SQLite at <dataDir>/modelvault.sqlite. */
  database?: DatabaseConfig;
  host?: string;
  port?: number;
  /** Serve HTTPS directly with these PEM files. */
  tls?: { certFile: string; keyFile: string };
  /**
   * The externally visible origin (scheme://host[:port]), used as the license `iss` and to
   * check DPoP `htu`. Behind a TLS proxy, set it to the proxy's public origin.
   */
  publicUrl?: string;
  /** Browser origins allowed by CORS. */
  corsOrigins?: string[];
  oidc?: OidcIssuer[];
  /** Request body limit in bytes (default 64 KiB). */
  maxBodyBytes?: number;
  /** DPoP proof iat acceptance window, seconds either side (default 60). */
  dpopWindowSeconds?: number;
  /**
   * Addresses or CIDR ranges of reverse proxies whose `X-Forwarded-For` is believed (default
   * none: the socket's peer is the client). Failed authentications are counted per client address.
   */
  trustProxy?: string[];
  /**
   * Per-principal requests per minute, per instance (default 600), and failed authentications
   * per client address per minute, shared by all instances (default 20).
   */
  rateLimits?: { perPrincipalPerMinute?: number; authFailuresPerMinute?: number };
  /** Anomaly thresholds per minute: requests per principal (spike) and denials per principal (burst). */
  anomalyThresholds?: { requestSpikePerMinute?: number; denialBurstPerMinute?: number };
  /** Output monitoring thresholds (docs/THREAT-MODEL.md, "Output monitoring"). */
  monitoring?: MonitoringOptions;
  /**
   * The operations console's built files (served at /console/), or false for none. Default: the
   * console shipped in the package (dist/console).
   */
  consoleDir?: string | false;
  /** Write a signed audit checkpoint every N entries (default 100). */
  checkpointEvery?: number;
  /**
   * Days traffic-made rows are kept once they can no longer matter (default 400, a yearly
   * billing cycle and a month): settled licenses and their usage reports, quota counters of
   * past periods, anomalies, fork evidence. `null` keeps them for ever. The audit log, devices
   * and what admins create are never pruned (docs/RETENTION.md).
   */
  retentionDays?: number | null;
  /**
   * Slow clients are cut off (Node answers 408 and closes): all request headers within
   * `headersMs` (default 10 s), the whole request with its body within `requestMs` (default
   * 30 s), an idle kept-alive connection after `keepAliveMs` (default 5 s). Node's own defaults
   * (60 s, 300 s) let a slowloris client hold a connection for minutes.
   */
  timeouts?: { headersMs?: number; requestMs?: number; keepAliveMs?: number };
  /** Grace period for in-flight requests on shutdown, ms (default 10 s). */
  shutdownGraceMs?: number;
  /** Environment for key overrides (MODELVAULT_LICENSE_KEY, MODELVAULT_KEK, …). */
  env?: Record<string, string | undefined>;
  /** Clock in seconds; tests inject one. */
  now?: () => number;
  /** Log sink (one JSON object per call); default stdout. */
  log?: (entry: Record<string, unknown>) => void;
}

export interface MonitoringOptions {
  /** Distributions are compared over this recent window (default 1 day). */
  windowSeconds?: number;
  /** Without a declared baseline, the model's first this-many seconds of aggregates are its baseline (default 3 days). */
  learnSeconds?: number;
  /** Population stability index at or above which a distribution has moved (default 0.25). */
  psi?: number;
  /** Chi-square p-value below which the move is not chance (default 0.001). */
  pValue?: number;
  /** Rows a device needs in the window before it is compared (default 100). */
  minDeviceCount?: number;
  /** Rows a reference (everyone else, an entitlement, the model) needs (default 200). */
  minReferenceCount?: number;
}

export type ResolvedOptions = Required<Omit<ServerOptions, "tls" | "publicUrl" | "monitoring">> &
  Pick<ServerOptions, "tls" | "publicUrl"> & { monitoring: Required<MonitoringOptions> };

export function resolveOptions(o: ServerOptions): ResolvedOptions {
  return {
    database: { kind: "sqlite", file: join(o.dataDir, "modelvault.sqlite") },
    host: "127.0.0.1",
    port: 8787,
    corsOrigins: [],
    trustProxy: [],
    oidc: [],
    maxBodyBytes: 64 * 1024,
    dpopWindowSeconds: 60,
    checkpointEvery: 100,
    retentionDays: 400,
    shutdownGraceMs: 10_000,
    env: {},
    now: () => Math.floor(Date.now() / 1000),
    log: (entry) => process.stdout.write(`${JSON.stringify(entry)}\n`),
    ...o,
    rateLimits: { perPrincipalPerMinute: 600, authFailuresPerMinute: 20, ...o.rateLimits },
    anomalyThresholds: { requestSpikePerMinute: 300, denialBurstPerMinute: 10, ...o.anomalyThresholds },
    timeouts: { headersMs: 10_000, requestMs: 30_000, keepAliveMs: 5_000, ...o.timeouts },
    consoleDir: o.consoleDir ?? defaultConsoleDir(),
    monitoring: {
      windowSeconds: 86400,
      learnSeconds: 3 * 86400,
      psi: 0.25,
      pValue: 0.001,
      minDeviceCount: 100,
      minReferenceCount: 200,
      ...o.monitoring,
    },
  };
}
