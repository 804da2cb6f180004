import { ModelVaultError } from "../../core/errors.js";
import type { Db } from "../db/open-database.js";

/** One authentication attempt: where it comes from and whom it claims to be. */
export interface Attempt {
  /** The trusted client address (see ClientAddresses). */
  address: string;
  /** `key:<id>` or `oidc:<iss> <sub>` (claimedIdentity), when the credential claims one. */
  identity: string | undefined;
}

/** Failures of one identity from one address before that pair is refused for the minute. */
const PAIR_LIMIT = 5;
const WINDOW = 60;

/**
 * Slows credential guessing without locking anyone out (ASVS 6.1.1, API2:2023). Failures are
 * counted per minute in the database, so every instance sees the same counts, under three keys:
 * the client address, the claimed identity, and the pair. Before a credential is checked:
 *
 * - an identity that failed PAIR_LIMIT times from this address is refused from this address;
 * - an identity that failed `limit` times in all (guessed from many addresses) is refused from
 *   every address that has failed on it, and only from those: its owner is unaffected;
 * - an address that failed `limit` times is refused, except for a credential that claims an
 *   existing, active identity it has not failed on, so others behind the same address (a NAT,
 *   a proxy not configured as trusted) keep working while a guesser's made-up keys are refused.
 *
 * A refusal is 429 with Retry-After until the minute ends; refused attempts are not counted, so
 * a refusal never extends itself. Counters are fixed windows: at most 2 × limit attempts pass in
 * any 60 s straddling two windows.
 */
export class AuthThrottle {
  constructor(
    private readonly db: Db,
    private readonly limit: number,
    private readonly now: () => number,
    private readonly isActive: (identity: string) => Promise<boolean>,
  ) {}

  /** Throws ERR_RATE_LIMITED when the attempt must not be evaluated. */
  async admit(attempt: Attempt): Promise<void> {
    const window = this.window();
    const keys = this.keys(attempt);
    const rows = await this.db.kysely
      .selectFrom("auth_failures")
      .select(["key", "failures"])
      .where("window_start", "=", window)
      .where("key", "in", Object.values(keys))
      .execute();
    const count = (key: string | undefined) => rows.find((r) => r.key === key)?.failures ?? 0;
    const pair = count(keys.pair);
    if (keys.pair && pair >= Math.min(PAIR_LIMIT, this.limit))
      this.refuse(window, "too many failed attempts with this credential from this address");
    if (keys.identity && count(keys.identity) >= this.limit && pair > 0)
      this.refuse(window, "this credential is being guessed; this address already failed on it");
    if (count(keys.address) >= this.limit) {
      const innocent = attempt.identity !== undefined && (await this.isActive(attempt.identity));
      if (!innocent) this.refuse(window, "too many failed authentications from this address");
    }
  }

  /** Counts a failed attempt under its address, its claimed identity and the pair. */
  async recordFailure(attempt: Attempt): Promise<void> {
    const window_start = this.window();
    await this.db.kysely
      .insertInto("auth_failures")
      .values(Object.values(this.keys(attempt)).map((key) => ({ key, window_start, failures: 1 })))
      .onConflict((oc) =>
        oc
          .columns(["key", "window_start"])
          .doUpdateSet((eb) => ({ failures: eb("auth_failures.failures", "+", 1) })),
      )
      .execute();
  }

  private keys(a: Attempt): { address: string; identity?: string; pair?: string } {
    const address = `addr:${a.address}`;
    if (a.identity === undefined) return { address };
    return { address, identity: a.identity, pair: `pair:${a.identity}|${a.address}` };
  }

  private window(): number {
    const now = this.now();
    return now - (now % WINDOW);
  }

  private refuse(window: number, message: string): never {
    throw new ModelVaultError("ERR_RATE_LIMITED", message, { retryAfter: window + WINDOW - this.now() });
  }
}
