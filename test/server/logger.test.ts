import { describe, expect, it } from "vitest";
import { Logger } from "../../src/server/monitoring/logger.js";

describe("structured logs", () => {
  it("escape control, escape-sequence and bidi characters in values and keys (no log injection, ASVS 16.4.1)", () => {
    const lines: Record<string, unknown>[] = [];
    const hostile = 'x\n{"level":"error","msg":"forged"}\r\u001b[31m\u202egnp.exe\u2066\u0000';
    new Logger((e) => lines.push(e)).log("warn", "authentication failed", {
      route: hostile,
      nested: { [hostile]: [hostile] },
    });
    const text = JSON.stringify(lines[0]);
    for (const raw of ["\n", "\r", "\u001b", "\u202e", "\u2066", "\u0000"]) {
      expect(JSON.stringify(lines[0]?.route)).not.toContain(raw);
      expect(Object.keys(lines[0]?.nested as object)[0]).not.toContain(raw);
    }
    expect(lines[0]?.route).toBe(
      'x\\u000a{"level":"error","msg":"forged"}\\u000d\\u001b[31m\\u202egnp.exe\\u2066\\u0000',
    );
    expect(text).toContain("\\\\u202e");
  });

  it("bounds each string (a huge value cannot flood the log)", () => {
    const lines: Record<string, unknown>[] = [];
    new Logger((e) => lines.push(e)).log("info", "x", { v: "a".repeat(100_000) });
    expect(String(lines[0]?.v).length).toBe(2000);
  });
});
