/**
 * Fresh apps outside the repository that install the packed tarball as users do: `npm install`
 * of `modelvault` from the .tgz with its production dependencies only. Build tools the app
 * would have as its own devDependencies (vite, typescript, webpack) and the better-sqlite3
 * driver are symlinked from this repository's install after that: same versions, no download
 * and no second 60-second native compile. (Not as `file:` dependencies: npm 11's arborist
 * crashes on a linked package that is also an optional peer of another.) Nothing of ours is
 * linked.
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { type PackedTarball, packTarball, REPO } from "../../scripts/pack-tarball.js";

export type { PackedTarball };

/** Packs the repository once into a temporary directory. */
export async function packForConsumers(): Promise<PackedTarball> {
  return packTarball(await mkdtemp(join(tmpdir(), "modelvault-tarball-")));
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; never throws for a non-zero exit. */
export function run(
  command: string,
  args: string[],
  options: { cwd: string; env?: Record<string, string>; timeout?: number },
): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      {
        cwd: options.cwd,
        env: { ...process.env, npm_config_loglevel: "error", ...options.env },
        timeout: options.timeout ?? 180_000,
        maxBuffer: 32 * 1024 * 1024,
      },
      (error, stdout, stderr) =>
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** Symlinks `node_modules/<tool>` and its executables from this repository's install. */
async function linkTool(app: string, tool: string): Promise<void> {
  const from = join(REPO, "node_modules", tool);
  await symlink(from, join(app, "node_modules", tool), "dir");
  const manifest = JSON.parse(await readFile(join(from, "package.json"), "utf8")) as {
    bin?: string | Record<string, string>;
  };
  const bins = typeof manifest.bin === "string" ? { [tool]: manifest.bin } : (manifest.bin ?? {});
  await mkdir(join(app, "node_modules/.bin"), { recursive: true });
  for (const [name, target] of Object.entries(bins))
    await symlink(join(from, target), join(app, "node_modules/.bin", name));
}

/**
 * Creates an app in a new temporary directory with `files` and installs it. `tools` are
 * package names linked from this repository's node_modules as the app's devDependencies.
 */
export async function createApp(
  tarball: PackedTarball,
  o: { name: string; files?: Record<string, string>; tools?: string[] },
): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `modelvault-${o.name}-`));
  const pkg = {
    name: o.name,
    private: true,
    type: "module",
    dependencies: { modelvault: `file:${tarball.path}` },
  };
  await writeFile(join(dir, "package.json"), JSON.stringify(pkg, null, 2));
  for (const [path, text] of Object.entries(o.files ?? {})) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), text);
  }
  const install = await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline"], {
    cwd: dir,
  });
  if (install.code !== 0) throw new Error(`npm install in ${dir} failed:\n${install.stderr}`);
  for (const tool of o.tools ?? []) await linkTool(dir, tool);
  return dir;
}
