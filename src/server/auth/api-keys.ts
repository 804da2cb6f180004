import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * API keys look like `mvk_<id>_<secret>`: the id (72 random bits) finds the row, the secret
 * (256 random bits) is stored only as its SHA-256 and compared in constant time. A slow hash
 * would add nothing: the secret is random, not a password.
 */
export function generateApiKey(): { id: string; secret: string; token: string; secretHash: string } {
  const id = randomBytes(9).toString("base64url");
  const secret = randomBytes(32).toString("base64url");
  return { id, secret, token: `mvk_${id}_${secret}`, secretHash: hashSecret(secret) };
}

export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

const API_KEY = /^mvk_([A-Za-z0-9_-]{12})_([A-Za-z0-9_-]{43})$/;

export function parseApiKey(token: string): { id: string; secret: string } | undefined {
  const m = API_KEY.exec(token);
  return m ? { id: m[1] as string, secret: m[2] as string } : undefined;
}

/** Constant-time comparison of a presented secret with a stored hash (also when no row exists). */
export function secretMatches(secret: string, storedHash: string | undefined): boolean {
  const presented = Buffer.from(hashSecret(secret), "hex");
  const stored = Buffer.from(storedHash ?? "0".repeat(64), "hex");
  return timingSafeEqual(presented, stored) && storedHash !== undefined;
}
