import type { Migration } from "./migrations.js";

/**
 * Traceable licenses' tables (issue 12, docs/TRACING.md). Version 7, in its own module like
 * version 5, so parallel branches that extend migrations.ts do not collide with it.
 */
export const TRACING_MIGRATION: Migration = {
  version: 7,
  name: "trace secrets, biases and codewords of traceable models",
  async up(db) {
    const s = db.schema;
    // One row per traceable model version: the code's secret biases and the package's trace
    // secret under the KEK. Kept when the version is retired, so its leaks stay traceable.
    await s
      .createTable("model_traces")
      .addColumn("model_id", "text", (c) => c.notNull())
      .addColumn("version", "integer", (c) => c.notNull())
      .addColumn("slots", "integer", (c) => c.notNull())
      .addColumn("colluders", "integer", (c) => c.notNull())
      .addColumn("biases", "text", (c) => c.notNull())
      .addColumn("wrapped_secret", "text", (c) => c.notNull())
      .addColumn("kek_id", "text", (c) => c.notNull())
      // Who registered the version: the one publisher that may trace it (not whoever owns the id later).
      .addColumn("registered_by", "text", (c) => c.notNull())
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addPrimaryKeyConstraint("model_traces_pk", ["model_id", "version"])
      .execute();
    // One codeword per device and model version, assigned at its first license (the key makes
    // concurrent first licenses agree on one).
    await s
      .createTable("trace_codewords")
      .addColumn("model_id", "text", (c) => c.notNull())
      .addColumn("version", "integer", (c) => c.notNull())
      .addColumn("device_id", "text", (c) => c.notNull())
      .addColumn("principal_id", "text", (c) => c.notNull())
      .addColumn("entitlement_id", "text", (c) => c.notNull())
      .addColumn("codeword", "text", (c) => c.notNull())
      .addColumn("assigned_at", "bigint", (c) => c.notNull())
      .addPrimaryKeyConstraint("trace_codewords_pk", ["model_id", "version", "device_id"])
      .execute();
  },
};
