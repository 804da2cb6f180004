import { ModelVaultError } from "../../core/errors.js";

/** Roles (README, "Roles"). A principal may hold several, except the pairs in CONFLICTS. */
export const ROLES = ["admin", "publisher", "licensor", "auditor", "client"] as const;
export type Role = (typeof ROLES)[number];

/** Roles whose keys an admin must not be able to hold quietly (separation of duties). */
export const PRIVILEGED_ROLES: readonly string[] = ["admin", "publisher", "licensor", "auditor"];

/** Every permission a route can name, and the one role that holds it (least privilege). */
export const PERMISSIONS = {
  "principals:read": ["admin"],
  "principals:write": ["admin"],
  "roles:write": ["admin"],
  "api-keys:write": ["admin"],
  "publisher-keys:write": ["admin"],
  "publisher-keys:revoke-own": ["publisher"],
  "server-keys:rotate": ["admin"],
  "models:assign": ["admin"],
  "models:retire": ["admin"],
  "models:register": ["publisher"],
  // Tracing a leak names licensees: a publisher for its own model ids (checked by the route),
  // an auditor for any. Not admins, who hold no role that acts on models or the record.
  "models:trace": ["publisher", "auditor"],
  // Admins retire versions, so they see the catalog too.
  "models:read": ["admin", "publisher", "licensor", "auditor"],
  "entitlements:write": ["licensor"],
  "entitlements:read": ["licensor", "auditor"],
  "devices:read": ["licensor", "auditor"],
  "devices:revoke": ["licensor"],
  "devices:release": ["licensor"],
  "licenses:read": ["licensor", "auditor"],
  "licenses:revoke": ["licensor"],
  "audit:read": ["auditor"],
  "audit:checkpoint": ["admin"],
  "usage:read": ["auditor"],
  "anomalies:read": ["auditor"],
  // Marking an anomaly reviewed changes no policy: part of auditing (and itself audited).
  "anomalies:acknowledge": ["auditor"],
  "metrics:read": ["auditor", "admin"],
  "licenses:request": ["client"],
  "usage:report": ["client"],
  "self:read": ["client"],
  "self:keys": ["admin", "publisher", "licensor", "auditor", "client"],
  // Who am I, what may I do, and the audit entries of my own actions (the console shows them).
  "self:profile": ["admin", "publisher", "licensor", "auditor", "client"],
} as const satisfies Record<string, readonly Role[]>;

export type Permission = keyof typeof PERMISSIONS;

/**
 * Separation of duties: no one both registers and grants a model, and an admin (who manages
 * identities and keys) holds no role that acts on models, entitlements or the record.
 */
export const CONFLICTS: [Role, Role][] = [
  ["publisher", "licensor"],
  ["admin", "auditor"],
  ["admin", "licensor"],
  ["admin", "publisher"],
];

export function hasPermission(roles: readonly string[], permission: Permission): boolean {
  return (PERMISSIONS[permission] as readonly string[]).some((r) => roles.includes(r));
}

/** Throws ERR_ROLE_CONFLICT when a role set breaks separation of duties. */
export function checkRoleSet(roles: readonly string[]): void {
  for (const [a, b] of CONFLICTS) {
    if (roles.includes(a) && roles.includes(b)) {
      throw new ModelVaultError("ERR_ROLE_CONFLICT", `roles ${a} and ${b} may not be held together`, {
        roles: [a, b],
      });
    }
  }
}
