import { classifyDbError, type DbFault } from "./db-errors.js";

export type DbLog = (level: "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;

/**
 * Whether the database is reachable and writable, as the last queries found it. It only
 * reports: each change is logged once ("database unavailable", then "database available again
 * after 4 s"), so an outage is one pair of log lines, not one line per failed request.
 * Unavailability ends with any successful query; a full disk only with a successful write,
 * since reads keep working while the disk is full.
 */
export class DbHealth {
  private unavailableSince: number | undefined;
  private fullSince: number | undefined;

  constructor(
    private readonly log: DbLog,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Classifies a failed query or connection attempt and records it; returns the fault, if any. */
  failed(error: unknown): DbFault | undefined {
    const fault = classifyDbError(error);
    const e = error as { code?: unknown; message?: unknown };
    const cause = { code: typeof e?.code === "string" ? e.code : null, error: String(e?.message ?? error) };
    if (fault === "unavailable" && this.unavailableSince === undefined) {
      this.unavailableSince = this.clock();
      this.log("error", "database unavailable; answering 503 until it is back", cause);
    } else if (fault === "full" && this.fullSince === undefined) {
      this.fullSince = this.clock();
      this.log("error", "database storage full; writes answer 507, reads continue", cause);
    }
    return fault;
  }

  /** A query succeeded; `write` when it changed or committed something. */
  succeeded(write: boolean): void {
    if (this.unavailableSince !== undefined) {
      const seconds = Math.round((this.clock() - this.unavailableSince) / 1000);
      this.unavailableSince = undefined;
      this.log("info", "database available again", { downSeconds: seconds });
    }
    if (write && this.fullSince !== undefined) {
      const seconds = Math.round((this.clock() - this.fullSince) / 1000);
      this.fullSince = undefined;
      this.log("info", "database storage writable again", { fullSeconds: seconds });
    }
  }

  get state(): "ok" | "unavailable" | "full" {
    return this.unavailableSince !== undefined ? "unavailable" : this.fullSince !== undefined ? "full" : "ok";
  }
}
