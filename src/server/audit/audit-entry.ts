/**
 * One audit entry as stored and exported. Its own module, free of the database layer, so
 * auditors' tools (and the package's public types) can name it.
 */
export interface AuditEntry {
  seq: number;
  /** Seconds since the epoch, UTC. */
  at: number;
  actor: string;
  action: string;
  outcome: string;
  subject: string;
  /** Canonical JSON text. */
  detail: string;
  prev_hash: string;
  hash: string;
}
