import { chmod, open, readFile } from "node:fs/promises";
import { ModelVaultError } from "../core/errors.js";

/** Reads a JSON key file; a missing, unreadable or non-JSON file is ERR_KEY_INVALID naming the path. */
export async function readJsonKeyFile(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    throw new ModelVaultError("ERR_KEY_INVALID", `${what} file ${path} cannot be read`, { path });
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new ModelVaultError("ERR_KEY_INVALID", `${what} file ${path} is not JSON`, { path });
  }
}

/**
 * Writes a secret file with mode 0600 from the first byte: created with that mode (never
 * world-readable, even briefly), refusing to follow an existing file unless `overwrite`.
 */
export async function writeSecretFile(path: string, contents: string, overwrite = false): Promise<void> {
  const file = await open(path, overwrite ? "w" : "wx", 0o600);
  try {
    await file.chmod(0o600); // the mode argument is masked by umask; chmod is not
    await file.writeFile(contents);
    await file.sync();
  } finally {
    await file.close();
  }
}

/** Writes a public file (0644). */
export async function writePublicFile(path: string, contents: string, overwrite = false): Promise<void> {
  const file = await open(path, overwrite ? "w" : "wx", 0o644);
  try {
    await file.writeFile(contents);
  } finally {
    await file.close();
  }
  await chmod(path, 0o644);
}
