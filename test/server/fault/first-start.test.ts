import { type FSWatcher, watch } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { scratchDir, spawnServe } from "./serve-process.js";

/**
 * When to kill: the first start creates the SQLite file and its WAL (migrations), then the key
 * files one by one (each a temporary file, then a link), then the bootstrap admin. Each trigger
 * is a file-system event in the data directory, plus a delay.
 */
const TRIGGERS: { on: string; nth?: number; delayMs: number }[] = [
  { on: "modelvault.sqlite", delayMs: 0 },
  { on: "modelvault.sqlite-wal", delayMs: 0 },
  { on: "modelvault.sqlite-wal", delayMs: 15 },
  { on: "keys", delayMs: 0 },
  { on: "keys/", nth: 1, delayMs: 0 },
  { on: "keys/", nth: 4, delayMs: 0 },
  { on: "keys/", nth: 9, delayMs: 0 },
  { on: "keys/", nth: 12, delayMs: 5 },
];

/** Calls `fire` after the trigger's event in `dir` (and its delay). */
function armTrigger(dir: string, t: (typeof TRIGGERS)[number], fire: () => void): () => void {
  const watchers: FSWatcher[] = [];
  let keyEvents = 0;
  let fired = false;
  const go = () => {
    if (fired) return;
    fired = true;
    setTimeout(fire, t.delayMs);
  };
  watchers.push(
    watch(dir, (_, name) => {
      if (name === t.on) go();
      if (name === "keys" && t.on === "keys/" && watchers.length === 1) {
        try {
          watchers.push(
            watch(join(dir, "keys"), () => {
              if (++keyEvents >= (t.nth ?? 1)) go();
            }),
          );
        } catch {}
      }
    }),
  );
  return () => {
    for (const w of watchers) w.close();
  };
}

describe("kill -9 during the first start", () => {
  it(`never bricks the server: ${TRIGGERS.length} kills during migration, key creation and bootstrap`, async () => {
    for (const [i, trigger] of TRIGGERS.entries()) {
      const dir = await scratchDir("mv-first-");
      const doomed = spawnServe(["--data", dir], { waitListening: false }).process;
      const disarm = armTrigger(dir, trigger, () => doomed.child.kill("SIGKILL"));
      const fallback = setTimeout(() => doomed.child.kill("SIGKILL"), 20_000);
      await doomed.exited;
      clearTimeout(fallback);
      disarm();
      expect(doomed.url, `kill ${i} came after the start`).toBe("");
      const again = await spawnServe(["--data", dir]);
      expect(again.alive(), again.stderr).toBe(true);
      // The database has exactly one admin, and the key that was shown for it works.
      const shown = [doomed.bootstrapKey, again.bootstrapKey].filter(Boolean);
      expect(shown.length, `kill ${i}: ${doomed.stderr}`).toBeGreaterThanOrEqual(1);
      const r = await fetch(`${again.url}/v1/admin/principals`, {
        headers: { authorization: `Bearer ${shown.at(-1)}` },
      });
      expect(r.status, `kill ${i}`).toBe(200);
      expect(((await r.json()) as { principals: unknown[] }).principals).toHaveLength(1);
      await again.stop();
      // Every key file is whole (the server loaded them); a crash may leave only a temporary file.
      const keyFiles = (await readdir(join(dir, "keys"))).filter((f) => !f.endsWith(".tmp"));
      expect(keyFiles.sort()).toEqual([
        "kek.key",
        "license-signing.current.jwk.json",
        "license-signing.next.jwk.json",
        "registration.jwk.json",
      ]);
    }
  });

  it("with the database unreachable, serve stops with ERR_DB_UNAVAILABLE and never prints the connection string", async () => {
    const dir = await scratchDir("mv-first-");
    const p = spawnServe(["--data", dir], {
      env: { MODELVAULT_DATABASE_URL: "postgres://modelvault:s3cret-password@127.0.0.1:1/modelvault" },
      waitListening: false,
    }).process;
    expect(await p.exited).toBe(1);
    expect(p.stderr).toContain(
      "error ERR_DB_UNAVAILABLE: cannot reach the database to start (connect ECONNREFUSED",
    );
    expect(p.stderr).not.toContain("s3cret");
  });
});
