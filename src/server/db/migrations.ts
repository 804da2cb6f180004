import { type Kysely, sql } from "kysely";
import type { Database } from "./schema.js";

/**
 * Versioned schema migrations, written once for both dialects with Kysely's schema builder.
 * Never edit a shipped migration: add the next one.
 */
export interface Migration {
  version: number;
  name: string;
  up(db: Kysely<Database>, dialect: "sqlite" | "postgres"): Promise<void>;
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: "initial schema",
    async up(db, dialect) {
      const s = db.schema;
      const autoId = dialect === "postgres" ? "bigserial" : "integer";
      await s
        .createTable("server_secrets")
        .addColumn("name", "text", (c) => c.primaryKey())
        .addColumn("value", "text", (c) => c.notNull())
        .execute();
      await s
        .createTable("principals")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("name", "text", (c) => c.notNull())
        .addColumn("oidc_issuer", "text")
        .addColumn("oidc_subject", "text")
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("disabled_at", "bigint")
        .addUniqueConstraint("principals_oidc", ["oidc_issuer", "oidc_subject"])
        .execute();
      await s
        .createTable("principal_roles")
        .addColumn("principal_id", "text", (c) => c.notNull().references("principals.id"))
        .addColumn("role", "text", (c) => c.notNull())
        .addPrimaryKeyConstraint("principal_roles_pk", ["principal_id", "role"])
        .execute();
      await s
        .createTable("api_keys")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("principal_id", "text", (c) => c.notNull().references("principals.id"))
        .addColumn("secret_hash", "text", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("revoked_at", "bigint")
        .execute();
      await s
        .createTable("publisher_keys")
        .addColumn("kid", "text", (c) => c.primaryKey())
        .addColumn("jwk", "text", (c) => c.notNull())
        .addColumn("principal_id", "text")
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .execute();
      await s
        .createTable("models")
        .addColumn("id", "text", (c) => c.notNull())
        .addColumn("version", "integer", (c) => c.notNull())
        .addColumn("manifest_digest", "text", (c) => c.notNull())
        .addColumn("manifest_jws", "text", (c) => c.notNull())
        .addColumn("content_key_id", "text", (c) => c.notNull())
        .addColumn("wrapped_cek", "text", (c) => c.notNull())
        .addColumn("kek_id", "text", (c) => c.notNull())
        .addColumn("registered_by", "text", (c) => c.notNull())
        .addColumn("registered_at", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("models_pk", ["id", "version"])
        .execute();
      await s
        .createTable("entitlements")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("principal_id", "text", (c) => c.notNull().references("principals.id"))
        .addColumn("model_id", "text", (c) => c.notNull())
        .addColumn("min_version", "integer", (c) => c.notNull())
        .addColumn("max_version", "integer")
        .addColumn("scopes", "text", (c) => c.notNull())
        .addColumn("quota", "bigint", (c) => c.notNull())
        .addColumn("period_seconds", "bigint", (c) => c.notNull())
        .addColumn("license_allowance", "bigint", (c) => c.notNull())
        .addColumn("max_devices", "integer", (c) => c.notNull())
        .addColumn("devices_used", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("license_ttl_seconds", "integer", (c) => c.notNull())
        .addColumn("offline_seconds", "integer", (c) => c.notNull())
        .addColumn("report_grace_seconds", "integer", (c) => c.notNull())
        .addColumn("expires_at", "bigint", (c) => c.notNull())
        .addColumn("revoked_at", "bigint")
        .addColumn("created_by", "text", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .execute();
      await s
        .createIndex("entitlements_principal_model")
        .on("entitlements")
        .columns(["principal_id", "model_id"])
        .execute();
      await s
        .createTable("entitlement_devices")
        .addColumn("entitlement_id", "text", (c) => c.notNull())
        .addColumn("device_id", "text", (c) => c.notNull())
        .addColumn("added_at", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("entitlement_devices_pk", ["entitlement_id", "device_id"])
        .execute();
      await s
        .createTable("quota_counters")
        .addColumn("entitlement_id", "text", (c) => c.notNull())
        .addColumn("period_start", "bigint", (c) => c.notNull())
        .addColumn("reserved", "bigint", (c) => c.notNull().defaultTo(0))
        .addColumn("used", "bigint", (c) => c.notNull().defaultTo(0))
        .addPrimaryKeyConstraint("quota_counters_pk", ["entitlement_id", "period_start"])
        .execute();
      await s
        .createTable("devices")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("principal_id", "text", (c) => c.notNull())
        .addColumn("signing_jwk", "text", (c) => c.notNull())
        .addColumn("agreement_jkt", "text", (c) => c.notNull())
        .addColumn("first_seen", "bigint", (c) => c.notNull())
        .addColumn("last_seen", "bigint", (c) => c.notNull())
        .addColumn("revoked_at", "bigint")
        .addColumn("report_seq", "bigint", (c) => c.notNull().defaultTo(0))
        .addColumn("report_head", "text", (c) => c.notNull())
        .addColumn("report_last_to", "bigint", (c) => c.notNull().defaultTo(0))
        .execute();
      await s
        .createTable("licenses")
        .addColumn("jti", "text", (c) => c.primaryKey())
        .addColumn("entitlement_id", "text", (c) => c.notNull())
        .addColumn("principal_id", "text", (c) => c.notNull())
        .addColumn("device_id", "text", (c) => c.notNull())
        .addColumn("model_id", "text", (c) => c.notNull())
        .addColumn("model_version", "integer", (c) => c.notNull())
        .addColumn("issued_at", "bigint", (c) => c.notNull())
        .addColumn("expires_at", "bigint", (c) => c.notNull())
        .addColumn("offline_until", "bigint")
        .addColumn("period_start", "bigint", (c) => c.notNull())
        .addColumn("allowance", "bigint", (c) => c.notNull())
        .addColumn("used", "bigint", (c) => c.notNull().defaultTo(0))
        .addColumn("last_report_at", "bigint")
        .addColumn("released_at", "bigint")
        .addColumn("revoked_at", "bigint")
        .execute();
      await s
        .createIndex("licenses_device_entitlement")
        .on("licenses")
        .columns(["device_id", "entitlement_id", "issued_at"])
        .execute();
      await s
        .createIndex("licenses_principal")
        .on("licenses")
        .columns(["principal_id", "issued_at"])
        .execute();
      await s
        .createTable("usage_reports")
        .addColumn("device_id", "text", (c) => c.notNull())
        .addColumn("seq", "bigint", (c) => c.notNull())
        .addColumn("license_jti", "text", (c) => c.notNull())
        .addColumn("hash", "text", (c) => c.notNull())
        .addColumn("prev", "text", (c) => c.notNull())
        .addColumn("count", "bigint", (c) => c.notNull())
        .addColumn("window_from", "bigint", (c) => c.notNull())
        .addColumn("window_to", "bigint", (c) => c.notNull())
        .addColumn("received_at", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("usage_reports_pk", ["device_id", "seq"])
        .execute();
      await s.createIndex("usage_reports_license").on("usage_reports").column("license_jti").execute();
      await s
        .createTable("dpop_replay")
        .addColumn("key", "text", (c) => c.primaryKey())
        .addColumn("expires_at", "bigint", (c) => c.notNull())
        .execute();
      await s.createIndex("dpop_replay_expiry").on("dpop_replay").column("expires_at").execute();
      await s
        .createTable("anomalies")
        .addColumn("id", sql.raw(autoId) as never, (c) => c.primaryKey().notNull())
        .addColumn("kind", "text", (c) => c.notNull())
        .addColumn("severity", "text", (c) => c.notNull())
        .addColumn("principal_id", "text")
        .addColumn("device_id", "text")
        .addColumn("license_jti", "text")
        .addColumn("detail", "text", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .execute();
      await s
        .createTable("audit_head")
        .addColumn("id", "integer", (c) => c.primaryKey())
        .addColumn("seq", "bigint", (c) => c.notNull())
        .addColumn("hash", "text", (c) => c.notNull())
        .execute();
      await s
        .createTable("audit_log")
        .addColumn("seq", "bigint", (c) => c.primaryKey())
        .addColumn("at", "bigint", (c) => c.notNull())
        .addColumn("actor", "text", (c) => c.notNull())
        .addColumn("action", "text", (c) => c.notNull())
        .addColumn("outcome", "text", (c) => c.notNull())
        .addColumn("subject", "text", (c) => c.notNull())
        .addColumn("detail", "text", (c) => c.notNull())
        .addColumn("prev_hash", "text", (c) => c.notNull())
        .addColumn("hash", "text", (c) => c.notNull())
        .execute();
      await s
        .createTable("audit_checkpoints")
        .addColumn("size", "bigint", (c) => c.primaryKey())
        .addColumn("head", "text", (c) => c.notNull())
        .addColumn("at", "bigint", (c) => c.notNull())
        .addColumn("token", "text", (c) => c.notNull())
        .execute();
    },
  },
  {
    version: 2,
    name: "failed authentications shared by instances",
    async up(db) {
      // One row per counter and minute: an address, a presented key id, or the pair.
      await db.schema
        .createTable("auth_failures")
        .addColumn("key", "text", (c) => c.notNull())
        .addColumn("window_start", "bigint", (c) => c.notNull())
        .addColumn("failures", "integer", (c) => c.notNull())
        .addPrimaryKeyConstraint("auth_failures_pk", ["key", "window_start"])
        .execute();
      await db.schema
        .createIndex("auth_failures_window")
        .on("auth_failures")
        .column("window_start")
        .execute();
    },
  },
  {
    version: 3,
    name: "model ownership and retirement; open licenses by entitlement",
    async up(db) {
      const s = db.schema;
      // A model id belongs to one principal (its first registrant, or whom an admin assigns).
      await s
        .createTable("model_owners")
        .addColumn("model_id", "text", (c) => c.primaryKey())
        .addColumn("principal_id", "text", (c) => c.notNull())
        .addColumn("assigned_by", "text", (c) => c.notNull())
        .addColumn("assigned_at", "bigint", (c) => c.notNull())
        .execute();
      // Retired versions leave `models` (so the version can be registered again by its owner)
      // and are kept here as the record.
      await s
        .createTable("model_retirements")
        .addColumn("model_id", "text", (c) => c.notNull())
        .addColumn("version", "integer", (c) => c.notNull())
        .addColumn("manifest_digest", "text", (c) => c.notNull())
        .addColumn("registered_by", "text", (c) => c.notNull())
        .addColumn("registered_at", "bigint", (c) => c.notNull())
        .addColumn("retired_by", "text", (c) => c.notNull())
        .addColumn("retired_at", "bigint", (c) => c.notNull())
        .addColumn("reason", "text", (c) => c.notNull())
        .addPrimaryKeyConstraint("model_retirements_pk", ["model_id", "version", "retired_at"])
        .execute();
      // When a license can no longer be used (its offline deadline, else its expiry): open
      // licenses past it are settled and their unused allowance returns to the quota. The
      // partial index keeps that lookup a short range scan however many licenses are open.
      await s.alterTable("licenses").addColumn("usable_until", "bigint").execute();
      await db
        .updateTable("licenses")
        .set({ usable_until: sql`coalesce(offline_until, expires_at)` })
        .execute();
      await s
        .createIndex("licenses_open_by_deadline")
        .on("licenses")
        .columns(["entitlement_id", "usable_until"])
        .where(sql.ref("released_at"), "is", null)
        .execute();
      const registered = await db
        .selectFrom("models")
        .select(["id", "registered_by", "registered_at"])
        .orderBy("registered_at")
        .orderBy("version")
        .execute();
      const owners = new Map<string, { by: string; at: number }>();
      for (const m of registered)
        if (!owners.has(m.id)) owners.set(m.id, { by: m.registered_by, at: m.registered_at });
      for (const [modelId, o] of owners)
        await db
          .insertInto("model_owners")
          .values({ model_id: modelId, principal_id: o.by, assigned_by: "migration", assigned_at: o.at })
          .execute();
    },
  },
];
