import { randomBytes } from "node:crypto";
import { mkdir, readdir, rename, rm, rmdir } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { ModelVaultError } from "../core/errors.js";

/**
 * An output directory built beside its final place and renamed into it only when complete, so a
 * failure (or a kill) never leaves a half-written package where a reader could find it.
 */
export class StagedOutput {
  readonly path: string;
  private constructor(
    readonly finalPath: string,
    private readonly force: boolean,
  ) {
    this.path = join(dirname(finalPath), `.${basename(finalPath)}.tmp-${randomBytes(6).toString("hex")}`);
  }

  /** Refuses a non-empty destination unless `force`, then creates the staging directory. */
  static async create(outDir: string, force: boolean): Promise<StagedOutput> {
    const staged = new StagedOutput(resolve(outDir), force);
    const existing = await readdir(staged.finalPath).catch((e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT") return [];
      if (e.code === "ENOTDIR") return ["(a file)"];
      throw e;
    });
    if (existing.length > 0 && !force) {
      throw new ModelVaultError(
        "ERR_PACK_OUTPUT_NOT_EMPTY",
        `output ${outDir} exists and is not empty (use --force)`,
        {
          path: outDir,
        },
      );
    }
    await mkdir(staged.path, { recursive: true, mode: 0o755 });
    return staged;
  }

  /** Moves the staged directory into place, replacing an old one only at this last step. */
  async commit(): Promise<void> {
    const trash = `${this.path}.old`;
    let replaced = false;
    if (this.force) {
      replaced = await rename(this.finalPath, trash).then(
        () => true,
        () => false,
      );
    } else {
      // create() saw it empty or absent; rename() cannot replace a directory, even an empty one.
      await rmdir(this.finalPath).catch(() => undefined);
    }
    await rename(this.path, this.finalPath);
    if (replaced) await rm(trash, { recursive: true, force: true });
  }

  /** Removes everything staged. Safe to call after a failure at any point. */
  async discard(): Promise<void> {
    await rm(this.path, { recursive: true, force: true });
  }
}
