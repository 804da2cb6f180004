/**
 * The database drivers are optional peer dependencies: a browser-only app that installs
 * modelvault never compiles better-sqlite3 or downloads pg. They are loaded on first use, and
 * a missing one is a coded error that names the package to install.
 */
import { ModelVaultError } from "../../core/errors.js";

/** better-sqlite3's constructor, named here so declarations need not name its internal namespace. */
export type SqliteConstructor = new (
  file: string,
  options?: import("better-sqlite3").Options,
) => import("better-sqlite3").Database;

async function load<T>(pkg: string, why: string, range: string): Promise<T> {
  try {
    return ((await import(pkg)) as { default: T }).default;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ERR_MODULE_NOT_FOUND") throw e;
    throw new ModelVaultError(
      "ERR_DEPENDENCY_MISSING",
      `${why} needs the package "${pkg}": npm install ${pkg}@${range}`,
      { package: pkg },
    );
  }
}

/** better-sqlite3 (major 12: major 13 needs Node 22). */
export const loadSqlite = (): Promise<SqliteConstructor> =>
  load("better-sqlite3", "the SQLite database", "12");

/** node-postgres. */
export const loadPg = (): Promise<typeof import("pg").default> => load("pg", "a PostgreSQL database", "8");
