import type { MonitoringPolicy } from "../src/core/monitoring.js";
import {
  signUsageReport,
  type UsageClaims,
  usageGenesis,
  usageReportHash,
} from "../src/core/usage-report.js";
import type { PlainTensor } from "../src/core/worker-protocol.js";
import type { LicenseClient } from "./license-client.js";
import { observeOutputs, type PendingAggregates, releaseAggregates } from "./output-monitor.js";
import type { DeviceRecord, OutboxEntry, Storage, UsageState } from "./storage.js";

/** The usage state with the output counts not yet reported (stored in the same record). */
type State = UsageState & { agg?: PendingAggregates | undefined };

const MAX_BATCH = 100;

/**
 * Counts inferences and turns them into signed, chained usage reports. A report is written to
 * the IndexedDB outbox together with the new chain head (one durable transaction) before it is
 * sent, and leaves the outbox only when the server acknowledges it, so reports survive reloads
 * and offline periods and are delivered at least once (the server de-duplicates).
 */
export class UsageReporter {
  private state: State | undefined;
  private monitoring: MonitoringPolicy | undefined;
  private memoryOutbox: OutboxEntry[] = [];
  private persistTimer: ReturnType<typeof setTimeout> | undefined;
  private flushing: Promise<{ sent: number; pending: number }> | undefined;

  constructor(
    private readonly storage: Storage | undefined,
    private readonly device: DeviceRecord,
    private readonly client: LicenseClient,
    private readonly now: () => number,
  ) {}

  private async load(): Promise<State> {
    if (!this.state) {
      this.state = (await this.storage?.db.get("usage", this.device.jkt).catch(() => undefined)) ?? {
        jkt: this.device.jkt,
        seq: 0,
        prev: await usageGenesis(this.device.jkt),
        pending: 0,
        pendingSince: this.now(),
        license: "",
      };
    }
    return this.state;
  }

  async init(licenseId: string): Promise<void> {
    const s = await this.load();
    if (s.pending === 0) s.license = licenseId;
  }

  /** Counts `n` inferences under `licenseId`; persisted within a second, off the run path. */
  count(licenseId: string, n = 1): void {
    const s = this.state;
    if (!s) return;
    if (s.pending === 0) {
      s.pendingSince = this.now();
      s.license = licenseId;
    }
    s.pending += n;
    this.schedulePersist();
  }

  /** Adds a run's outputs to the pending aggregates of the manifest's monitoring policy. */
  observe(policy: MonitoringPolicy, outputs: Record<string, PlainTensor>): void {
    const s = this.state;
    if (!s) return;
    this.monitoring = policy;
    s.agg = observeOutputs(s.agg, policy, outputs);
    this.schedulePersist();
  }

  private schedulePersist(): void {
    this.persistTimer ??= setTimeout(() => {
      this.persistTimer = undefined;
      // The state as it is then: a report sealed meanwhile replaced it, and must not be undone.
      const s = this.state;
      if (s) void this.storage?.db.put("usage", { ...s }).catch(() => undefined);
    }, 1000);
  }

  /** Pending count since the last report. */
  pending(): number {
    return this.state?.pending ?? 0;
  }

  private async outbox(): Promise<OutboxEntry[]> {
    if (!this.storage) return this.memoryOutbox;
    const all = await this.storage.db.getAll("outbox").catch(() => this.memoryOutbox);
    return all.filter((e) => e.jkt === this.device.jkt).sort((a, b) => a.seq - b.seq);
  }

  /** Seals the pending count into a report (or a zero-count heartbeat when `heartbeat`). */
  private async seal(heartbeat: boolean): Promise<void> {
    const s = await this.load();
    if (s.pending === 0 && !heartbeat) return;
    if (!s.license) return;
    const now = this.now();
    const { agg, rest } = releaseAggregates(s.agg, this.monitoring);
    const claims: UsageClaims = {
      lic: s.license,
      seq: s.seq + 1,
      prev: s.prev,
      count: s.pending,
      from: Math.min(s.pendingSince, now),
      to: now,
      iat: now,
      ...(agg ? { agg } : {}),
    };
    const token = await signUsageReport(this.device.signPrivate, this.device.jkt, claims);
    const next: State = {
      ...s,
      seq: claims.seq,
      prev: await usageReportHash(token),
      pending: 0,
      pendingSince: now,
      agg: rest,
    };
    const entry: OutboxEntry = {
      jkt: this.device.jkt,
      seq: claims.seq,
      token,
      origin: this.device.origin,
      count: claims.count,
    };
    if (this.storage) await this.storage.commitReport(entry, next);
    else this.memoryOutbox.push(entry);
    this.state = next;
  }

  /**
   * Seals what is pending and sends the outbox. Network failures leave everything in the
   * outbox for next time. Returns how many reports the server acknowledged and how many remain.
   */
  flush(options: { heartbeat?: boolean; license?: string } = {}): Promise<{ sent: number; pending: number }> {
    // Flushes run one after another: a flush asked for during another still sees later counts.
    const next = (this.flushing ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => this.flushOnce(options));
    this.flushing = next;
    return next;
  }

  private async flushOnce(options: {
    heartbeat?: boolean;
    license?: string;
  }): Promise<{ sent: number; pending: number }> {
    const s = await this.load();
    if (options.license && s.pending === 0) s.license = options.license;
    await this.seal(options.heartbeat ?? false);
    const queued = (await this.outbox()).slice(0, MAX_BATCH);
    if (queued.length === 0) return { sent: 0, pending: 0 };
    let results: { seq: number | null; status: string }[];
    try {
      results = (await this.client.sendUsage(queued.map((q) => q.token))).results;
    } catch {
      return { sent: 0, pending: queued.length };
    }
    const acked = queued.filter(
      (_, i) => results[i]?.status === "accepted" || results[i]?.status === "duplicate",
    );
    for (const a of acked) {
      if (this.storage) await this.storage.db.delete("outbox", [a.jkt, a.seq]).catch(() => undefined);
      else this.memoryOutbox = this.memoryOutbox.filter((m) => m.seq !== a.seq);
    }
    return { sent: acked.length, pending: (await this.outbox()).length };
  }

  /**
   * Makes sure the server holds a report for `licenseId` (it refuses a renewal with
   * ERR_USAGE_OVERDUE otherwise): sends what is pending, then a zero-count report for that
   * license. Resolves with whether everything was acknowledged.
   */
  async cover(licenseId: string): Promise<boolean> {
    await this.flush();
    const s = await this.load();
    if (s.pending === 0) s.license = licenseId;
    const r = await this.flush({ heartbeat: true });
    return r.pending === 0;
  }

  async dispose(): Promise<void> {
    if (this.persistTimer) clearTimeout(this.persistTimer);
    this.persistTimer = undefined;
    if (this.state) await this.storage?.db.put("usage", { ...this.state }).catch(() => undefined);
  }
}
