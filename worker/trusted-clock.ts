import { ModelVaultError } from "../src/core/errors.js";
import type { Storage } from "./storage.js";

const HIGH_WATER = "clock:highWater";
/** Slack for ordinary clock adjustments (NTP steps) before a backwards clock counts as tampering. */
const TOLERANCE_SECONDS = 120;

/**
 * Time as the runtime trusts it (SECURITY-CHECKLIST I2, I6). A session starts from the page's
 * wall clock, checked against a persisted high-water mark of every time seen (local readings and
 * server-signed license times), then advances with the monotonic clock, so setting the system
 * clock back during a session changes nothing, and setting it back between sessions is caught.
 */
export class TrustedClock {
  private readonly startMono = performance.now();
  private highWater: number;

  private constructor(
    private readonly startWall: number,
    highWater: number,
    private readonly storage: Storage | undefined,
  ) {
    this.highWater = highWater;
  }

  /** Throws ERR_CLOCK_ROLLBACK when the starting wall clock is behind the stored high-water mark. */
  static async start(wallNowSeconds: number, storage: Storage | undefined): Promise<TrustedClock> {
    const stored = (await storage?.getState<number>(HIGH_WATER).catch(() => undefined)) ?? 0;
    if (wallNowSeconds + TOLERANCE_SECONDS < stored) {
      throw new ModelVaultError(
        "ERR_CLOCK_ROLLBACK",
        `the clock reads ${new Date(wallNowSeconds * 1000).toISOString()}, before a time already seen`,
      );
    }
    const clock = new TrustedClock(wallNowSeconds, Math.max(stored, wallNowSeconds), storage);
    await clock.persist();
    return clock;
  }

  /** Seconds since the epoch, advancing monotonically from the session's start. */
  now(): number {
    return Math.floor(this.startWall + (performance.now() - this.startMono) / 1000);
  }

  /** Raises the high-water mark to a trusted time (e.g. a license's server-signed iat). */
  async observe(trustedSeconds: number): Promise<void> {
    if (trustedSeconds > this.highWater) {
      this.highWater = trustedSeconds;
      await this.persist();
    }
  }

  async persist(): Promise<void> {
    this.highWater = Math.max(this.highWater, this.now());
    await this.storage?.setState(HIGH_WATER, this.highWater).catch(() => undefined);
  }
}
