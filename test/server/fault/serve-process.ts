import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { onTestFinished } from "vitest";

/** The CLI from sources, as test/cli/run-cli.ts runs it (the packed bin is tested by test/consumer). */
const CLI = fileURLToPath(new URL("../../../src/cli.ts", import.meta.url));

/** A real `modelvault serve` process: its URL, what it printed, and ways to stop it. */
export interface ServeProcess {
  child: ChildProcess;
  /** Set once it listens. */
  url: string;
  /** The bootstrap admin key, if this process printed one. */
  bootstrapKey: string | undefined;
  /** Its JSON log lines (stdout), parsed. */
  logs: Record<string, unknown>[];
  stderr: string;
  alive(): boolean;
  /** Resolves with the exit code or signal when the process ends. */
  exited: Promise<number | NodeJS.Signals>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Spawns `modelvault serve --port 0 …` and waits until it listens (or exits, or `timeoutMs`
 * passes). Every process spawned here is killed when the test process ends, whatever happens.
 */
export function spawnServe(
  args: string[],
  o: { env?: Record<string, string>; timeoutMs?: number; waitListening?: boolean } = {},
): Promise<ServeProcess> & { process: ServeProcess } {
  const child = spawn(process.execPath, ["--import", "tsx", CLI, "serve", "--port", "0", ...args], {
    env: { ...process.env, ...o.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  LIVE.add(child);
  let stdoutBuffer = "";
  const p: ServeProcess = {
    child,
    url: "",
    bootstrapKey: undefined,
    logs: [],
    stderr: "",
    alive: () => child.exitCode === null && child.signalCode === null,
    exited: new Promise((resolve) =>
      child.once("exit", (code, signal) => {
        LIVE.delete(child);
        resolve(signal ?? code ?? 0);
      }),
    ),
    async stop(graceMs = 10_000) {
      if (!p.alive()) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await p.exited;
      clearTimeout(timer);
    },
  };
  child.stdout?.on("data", (d: Buffer) => {
    stdoutBuffer += d.toString();
    const lines = stdoutBuffer.split("\n");
    stdoutBuffer = lines.pop() ?? "";
    for (const line of lines) {
      if (/^mvk_[A-Za-z0-9_-]+$/.test(line)) p.bootstrapKey = line;
      else if (line.startsWith("{")) p.logs.push(JSON.parse(line));
    }
  });
  const listening = new Promise<ServeProcess>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`serve did not listen within ${o.timeoutMs ?? 30_000} ms: ${p.stderr}`)),
      o.timeoutMs ?? 30_000,
    );
    child.stderr?.on("data", (d: Buffer) => {
      p.stderr += d.toString();
      const m = / on (https?:\/\/[^\s]+) \(data in/.exec(p.stderr);
      if (m && !p.url) {
        p.url = m[1] as string;
        clearTimeout(timer);
        // A bootstrap key, if any, was printed to stdout before this line; wait for that pipe too.
        if (!p.stderr.includes("Bootstrap admin")) resolve(p);
        else
          waitFor("the bootstrap key", () => p.bootstrapKey !== undefined, 5000).then(
            () => resolve(p),
            reject,
          );
      }
    });
    p.exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited (${code}) before listening: ${p.stderr}`));
    });
  });
  listening.catch(() => {});
  const result = (o.waitListening === false ? Promise.resolve(p) : listening) as Promise<ServeProcess> & {
    process: ServeProcess;
  };
  result.process = p;
  return result;
}

const LIVE = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of LIVE) child.kill("SIGKILL");
});

/** Polls `check` until it returns true, or fails after `timeoutMs`. */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A temporary directory removed when the current test finishes. */
export async function scratchDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}
