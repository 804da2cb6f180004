/** What the API answers, as the console reads it (docs/PROTOCOL.md and the route files). */
export interface Me {
  id: string;
  name: string | null;
  roles: string[];
  via: "api-key" | "oidc";
  permissions: string[];
}

export interface AuditEntry {
  seq: number;
  at: number;
  actor: string;
  action: string;
  outcome: string;
  subject: string;
  detail: string;
  prev_hash: string;
  hash: string;
}

export interface Checkpoint {
  size: number;
  head: string;
  at: number;
  token: string;
}

export interface Anomaly {
  id: number;
  kind: string;
  severity: string;
  principal_id: string | null;
  device_id: string | null;
  license_jti: string | null;
  subject: string | null;
  detail: Record<string, unknown>;
  created_at: number;
  acknowledged_at: number | null;
  acknowledged_by: string | null;
  acknowledgement: string | null;
}

export interface Device {
  id: string;
  principal_id: string;
  principal_name: string;
  first_seen: number;
  last_seen: number;
  revoked_at: number | null;
  report_seq: number;
  report_last_to: number;
}

export interface License {
  jti: string;
  entitlement_id: string;
  principal_id: string;
  device_id: string;
  model_id: string;
  model_version: number;
  issued_at: number;
  expires_at: number;
  offline_until: number | null;
  allowance: number;
  used: number;
  released_at: number | null;
  revoked_at: number | null;
}

export interface Entitlement {
  id: string;
  principal_id: string;
  principal_name: string;
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
  expires_at: number;
  revoked_at: number | null;
  created_at: number;
  quota_used: number;
  quota_reserved: number;
}

export interface Model {
  id: string;
  version: number;
  manifest_digest: string;
  registered_by: string;
  registered_at: number;
  owner: string | null;
  publisher_kid: string | null;
  size: number | null;
  files: number | null;
  shards: number | null;
  monitoring: boolean;
}

export interface Principal {
  id: string;
  name: string;
  roles: string[];
  oidc_issuer: string | null;
  oidc_subject: string | null;
  created_at: number;
  disabled_at: number | null;
}

export interface UsagePoint {
  t: number;
  inferences: number;
  reports: number;
}
