/**
 * Fixed-window counters in memory, per instance. Limits that several instances must share
 * (quotas, device limits, replay, revocation) live in the database; these only shed load and
 * slow guessing, where a per-instance bound is enough. Windows are pruned as they pass.
 */
export class RateLimiter {
  private window = -1;
  private counts = new Map<string, number>();

  constructor(private readonly now: () => number) {}

  /** Counts one hit; returns seconds to wait when over `limit` per minute, else 0. */
  hit(key: string, limit: number): number {
    const now = this.now();
    const window = Math.floor(now / 60);
    if (window !== this.window) {
      this.window = window;
      this.counts = new Map();
    }
    const n = (this.counts.get(key) ?? 0) + 1;
    this.counts.set(key, n);
    return n > limit ? (window + 1) * 60 - now : 0;
  }

  count(key: string): number {
    return Math.floor(this.now() / 60) === this.window ? (this.counts.get(key) ?? 0) : 0;
  }
}
