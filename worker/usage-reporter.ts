import { decodeJwt } from "jose";
import type { MonitoringPolicy } from "../src/core/monitoring.js";
import {
  signUsageReport,
  type UsageClaims,
  usageGenesis,
  usageReportHash,
} from "../src/core/usage-report.js";
import type { PlainTensor } from "../src/core/worker-protocol.js";
import type { LicenseClient, UsageReply } from "./license-client.js";
import { observeOutputs, type PendingAggregates, releaseAggregates } from "./output-monitor.js";
import type { DeviceRecord, OutboxEntry, Storage, UsageState } from "./storage.js";

/** The usage state with the output counts not yet reported (stored in the same record). */
type State = UsageState & { agg?: PendingAggregates | undefined };

const MAX_BATCH = 100;

/** The license a signed report of ours names (read back from our own token). */
function licenseOf(token: string): string | undefined {
  try {
    const lic = decodeJwt(token).lic;
    return typeof lic === "string" ? lic : undefined;
  } catch {
    return undefined;
  }
}

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
    let sent = 0;
    // A second round only after a resync: the refused counts, re-sealed after the server's head.
    for (let round = 0; round < 2; round++) {
      const queued = (await this.outbox()).slice(0, MAX_BATCH);
      if (queued.length === 0) return { sent, pending: 0 };
      let reply: UsageReply;
      try {
        reply = await this.client.sendUsage(queued.map((q) => q.token));
      } catch {
        return { sent, pending: queued.length };
      }
      const status = (i: number) => reply.results[i]?.status;
      const acked = queued.filter((_, i) => status(i) === "accepted" || status(i) === "duplicate");
      for (const a of acked) {
        if (this.storage) await this.storage.db.delete("outbox", [a.jkt, a.seq]).catch(() => undefined);
        else this.memoryOutbox = this.memoryOutbox.filter((m) => m.seq !== a.seq);
      }
      sent += acked.length;
      const refused = queued.flatMap((q, i) =>
        status(i) === "rejected" ? [{ entry: q, code: reply.results[i]?.code }] : [],
      );
      if (refused.length === 0 || !reply.head) break;
      await this.resync(reply.head, refused);
      await this.seal(false);
    }
    return { sent, pending: (await this.outbox()).length };
  }

  /**
   * The server refused reports and says where this device's chain stands (docs/PROTOCOL.md,
   * "POST /v1/usage"): continue from its head. A lost last write (the server holds a report
   * this device no longer remembers) or a restored older profile both end here: the refused
   * reports leave the outbox, and the inferences of those the chain refused (a fork or a gap)
   * are counted again into the next report, so nothing run goes unreported and nothing stays
   * in the outbox forever. Reports refused for what they claim (a revoked license, another
   * device's, malformed) are dropped: sending them again cannot succeed. One durable
   * transaction, as for every chain change.
   */
  private async resync(
    head: { seq: number; hash: string },
    refused: { entry: OutboxEntry; code: string | undefined }[],
  ): Promise<void> {
    const s = await this.load();
    const recount = refused.filter((r) => r.code === "ERR_USAGE_FORK" || r.code === "ERR_USAGE_GAP");
    const count = recount.reduce((n, r) => n + r.entry.count, 0);
    const last = recount.at(-1)?.entry.token;
    const next: UsageState = {
      ...s,
      seq: head.seq,
      prev: head.hash,
      pending: s.pending + count,
      pendingSince: s.pending > 0 ? s.pendingSince : this.now(),
      // Counts go back under the license they ran under, unless newer runs are pending.
      license: s.pending === 0 && last ? (licenseOf(last) ?? s.license) : s.license,
    };
    if (this.storage) {
      const tx = this.storage.db.transaction(["outbox", "usage"], "readwrite", { durability: "strict" });
      for (const r of refused) await tx.objectStore("outbox").delete([r.entry.jkt, r.entry.seq]);
      await tx.objectStore("usage").put(next);
      await tx.done;
    } else {
      const gone = new Set(refused.map((r) => r.entry.seq));
      this.memoryOutbox = this.memoryOutbox.filter((m) => !gone.has(m.seq));
    }
    this.state = next;
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
