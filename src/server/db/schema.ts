/** Table types for Kysely. Times are integer seconds since the epoch (UTC); JSON columns are text. */
import type { Generated } from "kysely";
import type { AuditEntry } from "../audit/audit-entry.js";

export interface Database {
  schema_migrations: { version: number; name: string; applied_at: number };
  server_secrets: { name: string; value: string };
  principals: {
    id: string;
    name: string;
    oidc_issuer: string | null;
    oidc_subject: string | null;
    created_at: number;
    disabled_at: number | null;
  };
  principal_roles: { principal_id: string; role: string };
  api_keys: {
    id: string;
    principal_id: string;
    secret_hash: string;
    created_at: number;
    revoked_at: number | null;
  };
  publisher_keys: {
    kid: string;
    jwk: string;
    principal_id: string | null;
    created_at: number;
    /** Revoked keys register and license nothing more (migration 4). */
    revoked_at: number | null;
    revoked_by: string | null;
    revoked_reason: string | null;
  };
  models: {
    id: string;
    version: number;
    manifest_digest: string;
    manifest_jws: string;
    content_key_id: string;
    wrapped_cek: string;
    kek_id: string;
    registered_by: string;
    registered_at: number;
    /** The publisher key that signed the manifest (migration 4; null only for unreadable old rows). */
    publisher_kid: string | null;
    /** The manifest's signed `expires`, if it has one (migration 4). */
    expires_at: number | null;
  };
  model_owners: { model_id: string; principal_id: string; assigned_by: string; assigned_at: number };
  model_retirements: {
    model_id: string;
    version: number;
    manifest_digest: string;
    registered_by: string;
    registered_at: number;
    retired_by: string;
    retired_at: number;
    reason: string;
  };
  entitlements: {
    id: string;
    principal_id: string;
    model_id: string;
    min_version: number;
    max_version: number | null;
    scopes: string;
    quota: number;
    period_seconds: number;
    license_allowance: number;
    max_devices: number;
    devices_used: number;
    license_ttl_seconds: number;
    offline_seconds: number;
    report_grace_seconds: number;
    expires_at: number;
    revoked_at: number | null;
    created_by: string;
    created_at: number;
  };
  entitlement_devices: { entitlement_id: string; device_id: string; added_at: number };
  quota_counters: { entitlement_id: string; period_start: number; reserved: number; used: number };
  devices: {
    id: string;
    principal_id: string;
    signing_jwk: string;
    agreement_jkt: string;
    first_seen: number;
    last_seen: number;
    revoked_at: number | null;
    report_seq: number;
    report_head: string;
    report_last_to: number;
  };
  licenses: {
    jti: string;
    entitlement_id: string;
    principal_id: string;
    device_id: string;
    model_id: string;
    model_version: number;
    issued_at: number;
    expires_at: number;
    offline_until: number | null;
    period_start: number;
    allowance: number;
    used: number;
    last_report_at: number | null;
    released_at: number | null;
    revoked_at: number | null;
    /** offline_until, else expires_at: after it the license is settled (migration 2; null only before it). */
    usable_until: number | null;
  };
  usage_reports: {
    device_id: string;
    seq: number;
    license_jti: string;
    hash: string;
    prev: string;
    count: number;
    window_from: number;
    window_to: number;
    received_at: number;
  };
  /** Conflicting signed reports (forks, rollbacks, lost writes), kept as evidence (migration 4). */
  usage_evidence: {
    device_id: string;
    hash: string;
    seq: number;
    kind: string;
    token: string;
    received_at: number;
  };
  dpop_replay: { key: string; expires_at: number };
  auth_failures: { key: string; window_start: number; failures: number };
  anomalies: {
    id: Generated<number>;
    kind: string;
    severity: string;
    principal_id: string | null;
    device_id: string | null;
    license_jti: string | null;
    detail: string;
    created_at: number;
    /** What it is about when not a device: an entitlement id, `model@version` (migration 5). */
    subject: string | null;
    acknowledged_at: number | null;
    acknowledged_by: string | null;
    acknowledgement: string | null;
  };
  output_aggregates: {
    device_id: string;
    seq: number;
    /** Index into the manifest's monitoring.outputs. */
    output: number;
    model_id: string;
    model_version: number;
    entitlement_id: string;
    /** JSON array of counts per bin. */
    counts: string;
    total: number;
    received_at: number;
  };
  /** A traceable model version (migration 7, docs/TRACING.md). */
  model_traces: {
    model_id: string;
    version: number;
    slots: number;
    /** The collusion size the biases were drawn for (tardos.ts biasCutoff). */
    colluders: number;
    /** JSON array of the per-slot secret biases p_i. */
    biases: string;
    /** The package's 32-byte trace secret under the KEK (tracing/trace-secret.ts). */
    wrapped_secret: string;
    kek_id: string;
    /** The publisher that registered the version: the one that may trace it. */
    registered_by: string;
    created_at: number;
  };
  /** A device's codeword for a traceable model version (migration 7). */
  trace_codewords: {
    model_id: string;
    version: number;
    device_id: string;
    principal_id: string;
    /** The entitlement of the license that assigned it. */
    entitlement_id: string;
    /** One '0' or '1' per slot. */
    codeword: string;
    assigned_at: number;
  };
  audit_head: { id: number; seq: number; hash: string };
  audit_log: AuditEntry;
  audit_checkpoints: { size: number; head: string; at: number; token: string };
}
