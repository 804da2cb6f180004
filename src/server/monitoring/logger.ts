/**
 * Structured JSON logs. Values are sanitised: control, bidi and escape characters in strings
 * are escaped (no log injection, ASVS 16.4.1), and fields that could carry secrets are never
 * passed in by callers (tokens and keys are logged only as ids or hashes).
 */
export type LogSink = (entry: Record<string, unknown>) => void;

// C0/C1 controls, DEL, and the bidi overrides/isolates that can reorder a log line on screen.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

export function sanitize(value: unknown): unknown {
  if (typeof value === "string") {
    return value.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`).slice(0, 2000);
  }
  if (Array.isArray(value)) return value.map(sanitize);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [sanitize(k) as string, sanitize(v)]));
  }
  return value;
}

export class Logger {
  constructor(private readonly sink: LogSink) {}
  log(level: "info" | "warn" | "error", msg: string, fields: Record<string, unknown> = {}): void {
    this.sink(sanitize({ time: new Date().toISOString(), level, msg, ...fields }) as Record<string, unknown>);
  }
}
