import type { Migration } from "./migrations.js";

/**
 * Output monitoring's tables (issue 13). Version 5, in its own module: version 4 is
 * taken by a change made in parallel (publisher-key revocation) that edits the list in
 * migrations.ts, so this one leaves that list alone; all-migrations.ts applies both modules'
 * migrations in ascending version.
 */
export const OUTPUT_MONITORING_MIGRATION: Migration = {
  version: 5,
  name: "output aggregates; anomaly subjects and acknowledgements",
  async up(db) {
    const s = db.schema;
    // One row per report and monitored output: counts per bin, never an input or an output.
    await s
      .createTable("output_aggregates")
      .addColumn("device_id", "text", (c) => c.notNull())
      .addColumn("seq", "bigint", (c) => c.notNull())
      .addColumn("output", "integer", (c) => c.notNull())
      .addColumn("model_id", "text", (c) => c.notNull())
      .addColumn("model_version", "integer", (c) => c.notNull())
      .addColumn("entitlement_id", "text", (c) => c.notNull())
      .addColumn("counts", "text", (c) => c.notNull())
      .addColumn("total", "bigint", (c) => c.notNull())
      .addColumn("received_at", "bigint", (c) => c.notNull())
      .addPrimaryKeyConstraint("output_aggregates_pk", ["device_id", "seq", "output"])
      .execute();
    await s
      .createIndex("output_aggregates_model_time")
      .on("output_aggregates")
      .columns(["model_id", "model_version", "output", "received_at"])
      .execute();
    // What an anomaly is about when that is not a device (an entitlement, a model version), and
    // who acknowledged it, when, with what note.
    await s.alterTable("anomalies").addColumn("subject", "text").execute();
    await s.alterTable("anomalies").addColumn("acknowledged_at", "bigint").execute();
    await s.alterTable("anomalies").addColumn("acknowledged_by", "text").execute();
    await s.alterTable("anomalies").addColumn("acknowledgement", "text").execute();
    await s.createIndex("anomalies_kind_subject").on("anomalies").columns(["kind", "subject"]).execute();
    await s.createIndex("usage_reports_received").on("usage_reports").column("received_at").execute();
  },
};
