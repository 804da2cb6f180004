/**
 * Peak resident memory of a Chromium profile's renderer processes (the page and its workers
 * live there), from /proc/<pid>/status VmHWM. The browser process is the one started with
 * `--user-data-dir=<dir>`; renderers are its descendants with `--type=renderer` (WebUI ones
 * excluded). Linux only.
 */
import { readdirSync, readFileSync } from "node:fs";

interface Proc {
  pid: number;
  ppid: number;
  cmdline: string[];
  hwmKiB: number;
}

function processes(): Proc[] {
  const out: Proc[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const status = readFileSync(`/proc/${name}/status`, "utf8");
      out.push({
        pid: Number(name),
        ppid: Number(/PPid:\s+(\d+)/.exec(status)?.[1] ?? 0),
        // Chromium rewrites its children's titles: arguments are then separated by spaces, not NULs.
        cmdline: readFileSync(`/proc/${name}/cmdline`, "utf8").split(/[\0 ]/),
        hwmKiB: Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0),
      });
    } catch {
      // exited while we looked
    }
  }
  return out;
}

/** Peak RSS (bytes) of the largest renderer of the browser using `userDataDir`. */
export function rendererPeakBytes(userDataDir: string): number {
  const all = processes();
  const browser = all.find((p) => p.cmdline.includes(`--user-data-dir=${userDataDir}`));
  if (!browser) throw new Error(`no browser process for ${userDataDir}`);
  const descendants = new Set([browser.pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of all)
      if (descendants.has(p.ppid) && !descendants.has(p.pid)) {
        descendants.add(p.pid);
        grew = true;
      }
  }
  const renderers = all.filter(
    (p) =>
      descendants.has(p.pid) &&
      p.cmdline.includes("--type=renderer") &&
      !p.cmdline.includes("--top-chrome-webui"),
  );
  return Math.max(0, ...renderers.map((p) => p.hwmKiB * 1024));
}
