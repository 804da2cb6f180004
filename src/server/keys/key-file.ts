import { randomBytes } from "node:crypto";
import { link, open, readdir, readFile, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { ModelVaultError } from "../../core/errors.js";

/**
 * Durable, atomic writes of the server's key and state files, and loads that name the file in
 * every error. A file is written whole to a temporary name (0600 from the first byte), fsynced,
 * then moved into place and the directory fsynced: a crash at any moment leaves the old file or
 * the new one, never an empty or half-written one.
 */

const TEMP = /^\..+\.[0-9a-f]{16}\.tmp$/;
/** Temporary files older than this are leftovers of a crash, not another process's write. */
const STALE_TEMP_MS = 60_000;

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function writeTemp(path: string, contents: string): Promise<string> {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(8).toString("hex")}.tmp`);
  const handle = await open(temp, "wx", 0o600);
  try {
    await handle.chmod(0o600); // the mode argument is masked by umask; chmod is not
    await handle.writeFile(contents);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return temp;
}

/** Replaces `path` atomically with `contents` (mode 0600). */
export async function replaceFileAtomic(path: string, contents: string): Promise<void> {
  const temp = await writeTemp(path, contents);
  await rename(temp, path);
  await fsyncDir(dirname(path));
}

/**
 * Creates `path` with `contents` (mode 0600) unless it exists; returns false when another
 * process created it first (link, unlike rename, never replaces), so of several processes
 * creating the same key at once exactly one wins and the others read its key.
 */
export async function createFileAtomic(path: string, contents: string): Promise<boolean> {
  const temp = await writeTemp(path, contents);
  try {
    await link(temp, path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw e;
  } finally {
    await unlink(temp);
  }
  await fsyncDir(dirname(path));
  return true;
}

/** Reads a key or state file; undefined when it does not exist, ERR_KEY_INVALID naming it when unreadable or empty. */
export async function readKeyFile(path: string, what: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new ModelVaultError("ERR_KEY_INVALID", `${what} file ${path} cannot be read`, { path });
  }
  if (text.trim() === "")
    throw new ModelVaultError("ERR_KEY_INVALID", `${what} file ${path} is empty`, { path });
  return text;
}

/** Parses JSON from a named source (a file or an environment variable); errors name it. */
export function parseJsonFrom(text: string, source: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ModelVaultError("ERR_KEY_INVALID", `${what} in ${source} is not JSON`, { path: source });
  }
}

/** Removes temporary files a crash left in `dir` (only old ones: a fresh one may be another process's write in progress). */
export async function removeStaleTemps(dir: string, now = Date.now()): Promise<void> {
  for (const name of await readdir(dir)) {
    if (!TEMP.test(name)) continue;
    const path = join(dir, name);
    const info = await stat(path).catch(() => undefined);
    if (info && now - info.mtimeMs > STALE_TEMP_MS) await unlink(path).catch(() => {});
  }
}
