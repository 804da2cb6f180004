/**
 * What a database error says about the database, as opposed to the request: the one place that
 * knows SQLite result codes, PostgreSQL SQLSTATEs and node-postgres's connection errors. Reads
 * only `code` and `message`, so it needs neither driver loaded.
 */
export type DbFault =
  /** Cannot be reached: refused, restarting, connection cut. Retry later (503). */
  | "unavailable"
  /** The disk is full: writes fail, reads work. Retry later (507). */
  | "full"
  /** Lock contention or a serialization failure: retry soon (503). */
  | "busy";

// SQLSTATE classes and codes (PostgreSQL docs, appendix A).
const PG_UNAVAILABLE = new Set(["57P01", "57P02", "57P03", "53300", "53200", "58000", "58030"]);
const PG_BUSY = new Set(["40001", "40P01", "55P03"]);
// Socket-level failures node-postgres passes through from net.
const NET_UNAVAILABLE = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);
// node-postgres and pg-pool raise these without a code.
const PG_CONNECTION_MESSAGES = [
  "Connection terminated",
  "Client has encountered a connection error and is not queryable",
  "timeout exceeded when trying to connect",
  "Client was closed and is not queryable",
];

export function classifyDbError(error: unknown): DbFault | undefined {
  const e = error as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === "string" ? e.code : "";
  const message = typeof e?.message === "string" ? e.message : "";
  if (code === "SQLITE_FULL" || code === "53100") return "full";
  if (code === "SQLITE_BUSY" || code.startsWith("SQLITE_BUSY_") || code === "SQLITE_LOCKED") return "busy";
  if (PG_BUSY.has(code)) return "busy";
  if (
    code.startsWith("SQLITE_IOERR") ||
    code.startsWith("SQLITE_CANTOPEN") ||
    code.startsWith("SQLITE_READONLY")
  )
    return "unavailable";
  if (code.startsWith("08") || PG_UNAVAILABLE.has(code) || NET_UNAVAILABLE.has(code)) return "unavailable";
  if (PG_CONNECTION_MESSAGES.some((m) => message.startsWith(m))) return "unavailable";
  return undefined;
}
