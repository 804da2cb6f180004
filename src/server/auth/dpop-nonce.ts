import { createHmac, timingSafeEqual } from "node:crypto";

const STEP_SECONDS = 60;
const ACCEPTED_STEPS = 5;

/**
 * Stateless DPoP nonces (RFC 9449 §8): base64url(step || HMAC-SHA256(secret, step)[0..16]),
 * where step = floor(now / 60). Accepted for 5 steps, so a nonce lives 4-5 minutes. The secret
 * is shared through the database, so every instance of one deployment accepts the others'
 * nonces and no other deployment's.
 */
export class DpopNonces {
  constructor(
    private readonly secret: Buffer,
    private readonly now: () => number,
  ) {}

  private mac(step: number): Buffer {
    const s = Buffer.alloc(4);
    s.writeUInt32BE(step);
    return Buffer.concat([s, createHmac("sha256", this.secret).update(s).digest().subarray(0, 16)]);
  }

  issue(): string {
    return this.mac(Math.floor(this.now() / STEP_SECONDS)).toString("base64url");
  }

  isValid(nonce: unknown): boolean {
    if (typeof nonce !== "string" || nonce.length !== 27) return false;
    const bytes = Buffer.from(nonce, "base64url");
    if (bytes.length !== 20) return false;
    const step = bytes.readUInt32BE(0);
    const current = Math.floor(this.now() / STEP_SECONDS);
    if (step > current || step <= current - ACCEPTED_STEPS) return false;
    return timingSafeEqual(bytes, this.mac(step));
  }
}
