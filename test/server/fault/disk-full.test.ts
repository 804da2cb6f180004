import { execFileSync } from "node:child_process";
import { mkdtemp, rm, statfs, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { apiCall, createPrincipal } from "../../../scripts/provision.js";
import { type ServeProcess, spawnServe } from "./serve-process.js";

/** Mounts a small tmpfs, or says why it cannot (not root, no mount permission in a container). */
async function mountSmallDisk(): Promise<{ dir: string } | { skip: string }> {
  if (process.getuid?.() !== 0) return { skip: "not root: cannot mount a small tmpfs to fill" };
  const dir = await mkdtemp(join(tmpdir(), "mv-full-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=6m,mode=0700", "tmpfs", dir], { stdio: "pipe" });
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    return {
      skip: `mounting a tmpfs is not allowed here: ${String((e as { stderr?: Buffer }).stderr ?? e)}`,
    };
  }
  onTestFinished(async () => {
    try {
      execFileSync("umount", [dir], { stdio: "pipe" });
    } catch {
      execFileSync("umount", ["-l", dir], { stdio: "pipe" }); // still busy: detach it anyway
    }
    await rm(dir, { recursive: true, force: true });
  });
  return { dir };
}

describe("a full disk under a SQLite server", () => {
  it("answers 507 ERR_STORAGE_FULL with Retry-After (never 500), keeps serving reads, and recovers by itself", async (t) => {
    const disk = await mountSmallDisk();
    if ("skip" in disk) {
      console.warn(`SKIPPED full-disk test: ${disk.skip}`);
      t.skip();
      return;
    }
    let server: ServeProcess | undefined;
    try {
      server = await spawnServe(["--data", join(disk.dir, "data")]);
      const admin = server.bootstrapKey as string;
      const call = apiCall(server.url);
      const auditor = await createPrincipal(call, admin, "auditor", ["auditor"]);
      // Fill the disk to the last byte.
      const filler = join(disk.dir, "filler");
      const { bavail, bsize } = await statfs(disk.dir);
      await writeFile(filler, Buffer.alloc(bavail * bsize)).catch(() => {});

      const statuses: number[] = [];
      let full: Response | undefined;
      for (let i = 0; i < 3000 && !full; i++) {
        const r = await fetch(`${server.url}/v1/admin/principals`, {
          method: "POST",
          headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
          body: JSON.stringify({ name: `principal ${i} ${"x".repeat(150)}` }),
        });
        statuses.push(r.status);
        if (r.status === 507) full = r;
        else await r.arrayBuffer();
      }
      expect(statuses.filter((s) => s !== 201 && s !== 507)).toEqual([]);
      expect(full, "the disk never filled up").toBeDefined();
      const body = (await full?.json()) as { error: { code: string } };
      expect(body.error.code).toBe("ERR_STORAGE_FULL");
      expect(Number(full?.headers.get("retry-after"))).toBeGreaterThan(0);

      // Reads keep working while the disk is full; writes keep answering 507, not 500.
      const get = (path: string, token: string) =>
        fetch(`${server?.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
      expect((await get("/v1/admin/principals?limit=5", admin)).status).toBe(200);
      expect((await get("/v1/audit?limit=5", auditor.token)).status).toBe(200);
      expect((await get("/.well-known/jwks.json", admin)).status).toBe(200);
      const again = await fetch(`${server.url}/v1/admin/principals`, {
        method: "POST",
        headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
        body: JSON.stringify({ name: "still full" }),
      });
      expect(again.status).toBe(507);

      // Space returns: writes succeed again without a restart, and the log says so.
      await rm(filler);
      const created = await call(admin, "POST", "/v1/admin/principals", { name: "after the disk was freed" });
      expect(created.id).toMatch(/^p_/);
      const messages = server.logs.map((l) => l.msg);
      expect(messages).toContain("database storage full; writes answer 507, reads continue");
      expect(messages).toContain("database storage writable again");
      expect(server.logs.filter((l) => l.msg === "unhandled error")).toEqual([]);
    } finally {
      await server?.stop();
    }
  });
});
