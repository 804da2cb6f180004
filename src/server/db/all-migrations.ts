import { OUTPUT_MONITORING_MIGRATION } from "./migration-output-monitoring.js";
import { TRACING_MIGRATION } from "./migration-tracing.js";
import { MIGRATIONS, type Migration } from "./migrations.js";

/**
 * Every migration, in the order they are applied: ascending version, whichever module holds
 * them. Branches that add a migration in parallel each take their own version; a database that
 * applied a later one first still gets the earlier one at the next start (applied versions are
 * looked up, not counted).
 */
export function allMigrations(): Migration[] {
  const all = [...MIGRATIONS, OUTPUT_MONITORING_MIGRATION, TRACING_MIGRATION].sort(
    (a, b) => a.version - b.version,
  );
  for (let i = 1; i < all.length; i++)
    if (all[i]?.version === all[i - 1]?.version)
      throw new Error(`two migrations claim version ${all[i]?.version}`);
  return all;
}
