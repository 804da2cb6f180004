import { z } from "zod";

/** Shared request-field schemas: strict, safe integers only, bounded strings. */
export const id = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, "an id of [A-Za-z0-9._:-]");
export const safeInt = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
export const version = z.number().int().min(1).max(0x7fffffff);
export const jwkPublic = z.strictObject({
  kty: z.literal("EC"),
  crv: z.literal("P-256"),
  x: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  y: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  kid: z.string().max(128).optional(),
  alg: z.string().max(32).optional(),
  use: z.string().max(8).optional(),
});
export const listQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  after: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0),
});
