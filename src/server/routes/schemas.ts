import { z } from "zod";
import { ROLES } from "../auth/permissions.js";

/** Shared request-field schemas: strict, safe integers only, bounded strings. */
export const id = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, "an id of [A-Za-z0-9._:-]");
/** Device ids (key thumbprints) and license ids (jti): base64url. */
export const tokenId = z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, "a base64url id");
/** Model ids as the container format allows them (docs/FORMAT.md). */
export const modelId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, "a model id of [A-Za-z0-9._-]")
  .refine((v) => !v.includes(".."), "must not contain ..");
export const safeInt = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
export const version = z.number().int().min(1).max(0x7fffffff);
/** A version in a URL path: decimal digits only, then the same range. */
export const versionParam = z
  .string()
  .regex(/^[1-9][0-9]{0,9}$/, "a version number")
  .transform(Number)
  .pipe(version);
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
/** Newest-first pages: `before` an id or sequence number (absent: from the newest). */
export const newestFirst = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  before: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
});
const flag = z.enum(["true", "false"]).transform((v) => v === "true");
export const anomalyQuery = newestFirst.extend({
  after: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  kind: z
    .string()
    .regex(/^[a-z_]{1,40}$/)
    .optional(),
  open: flag.optional(),
  device: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,128}$/)
    .optional(),
});
export const deviceQuery = listQuery.extend({
  /** Matches the start of a device id, a principal id, or part of a principal's name. */
  q: z
    .string()
    .regex(/^[A-Za-z0-9 ._:@-]{1,128}$/, "letters, digits, space and ._:@-")
    .optional(),
  status: z.enum(["active", "revoked"]).optional(),
});
export const licenseQuery = listQuery.extend({
  device: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,128}$/)
    .optional(),
  entitlement: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/)
    .optional(),
  open: flag.optional(),
});
export const seriesQuery = z.strictObject({
  model: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/)
    .optional(),
  entitlement: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/)
    .optional(),
  device: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,128}$/)
    .optional(),
  from: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  to: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  bucket: z.enum(["3600", "86400"]).transform(Number).default(86400),
});
export const numericIdParams = z.strictObject({
  id: z
    .string()
    .regex(/^[1-9][0-9]{0,15}$/, "a number")
    .transform(Number),
});
export const idParams = z.strictObject({ id });
/** An RFC 7638 SHA-256 thumbprint: how publisher keys are named. */
export const kidParams = z.strictObject({ kid: z.string().regex(/^[A-Za-z0-9_-]{43}$/, "a JWK thumbprint") });
export const reasonBody = z.strictObject({ reason: z.string().min(1).max(500) });
export const tokenIdParams = z.strictObject({ id: tokenId });
export const empty = z.strictObject({});

export const roles = z.array(z.enum(ROLES)).max(ROLES.length);
export const principalBody = z.strictObject({
  name: z.string().min(1).max(200),
  roles: roles.default([]),
  oidc: z.strictObject({ issuer: z.string().url().max(500), subject: z.string().min(1).max(500) }).optional(),
});

const DAY = 86400;
export const entitlementBody = z
  .strictObject({
    principalId: id,
    modelId,
    minVersion: version.default(1),
    maxVersion: version.nullable().default(null),
    scopes: z
      .array(z.enum(["infer", "offline"]))
      .min(1)
      .max(2),
    quota: z.number().int().min(1).max(1e12),
    periodSeconds: z
      .number()
      .int()
      .min(60)
      .max(366 * DAY),
    licenseAllowance: z.number().int().min(1).max(1e12).optional(),
    maxDevices: z.number().int().min(1).max(100_000),
    licenseTtlSeconds: z.number().int().min(30).max(DAY).default(900),
    offlineSeconds: z
      .number()
      .int()
      .min(0)
      .max(90 * DAY)
      .default(0),
    reportGraceSeconds: z
      .number()
      .int()
      .min(30)
      .max(30 * DAY)
      .optional(),
    expiresAt: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  })
  .refine((e) => e.maxVersion === null || e.maxVersion >= e.minVersion, {
    path: ["maxVersion"],
    message: "must be >= minVersion",
  })
  .refine((e) => e.offlineSeconds === 0 || e.scopes.includes("offline"), {
    path: ["offlineSeconds"],
    message: "needs the offline scope",
  });
export type EntitlementGrant = z.infer<typeof entitlementBody>;

/** A licensor's change to an entitlement: limits and lifetimes, never whom or which model. */
export const entitlementChange = z
  .strictObject({
    quota: z.number().int().min(1).max(1e12),
    licenseAllowance: z.number().int().min(1).max(1e12),
    maxDevices: z.number().int().min(1).max(100_000),
    licenseTtlSeconds: z.number().int().min(30).max(DAY),
    offlineSeconds: z
      .number()
      .int()
      .min(0)
      .max(90 * DAY),
    expiresAt: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  })
  .partial()
  .refine((c) => Object.keys(c).length > 0, { message: "change at least one field" });
export type EntitlementChange = z.infer<typeof entitlementChange>;
