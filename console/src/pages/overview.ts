import { barChart } from "../chart.js";
import type { ConsoleContext } from "../context.js";
import { type Child, h, mount } from "../dom.js";
import { day, num, when } from "../format.js";
import type { Anomaly, Checkpoint, Entitlement, UsagePoint } from "../types.js";

const stat = (label: string, value: Child, testid: string) =>
  h(
    "div",
    { class: "stat", "data-testid": testid },
    h("div", { class: "value" }, value),
    h("div", { class: "label" }, label),
  );

/** At a glance, limited to what the signed-in role may read: each block asks its own endpoint. */
export async function overviewPage(ctx: ConsoleContext, root: HTMLElement): Promise<void> {
  const stats: Child[] = [];
  const blocks: Child[] = [];
  if (ctx.can("devices:read")) {
    const s = await ctx.api.get<{
      devices: number;
      revoked: number;
      seenToday: number;
      openLicenses: number;
    }>("/v1/devices/summary");
    stats.push(
      stat("active devices (24 h)", num(s.seenToday), "stat-devices"),
      stat("open licenses", num(s.openLicenses), "stat-licenses"),
      stat("revoked devices", num(s.revoked), "stat-revoked"),
    );
  }
  if (ctx.can("anomalies:read")) {
    const { anomalies } = await ctx.api.get<{ anomalies: Anomaly[] }>("/v1/anomalies", {
      open: true,
      before: Number.MAX_SAFE_INTEGER,
      limit: 1000,
    });
    stats.push(
      stat(
        "open anomalies",
        h("a", { href: "#/anomalies", class: anomalies.length ? "bad" : "good" }, num(anomalies.length)),
        "stat-anomalies",
      ),
    );
  }
  if (ctx.can("usage:read")) {
    const { points } = await ctx.api.get<{ points: UsagePoint[] }>("/v1/usage/series", { bucket: 86400 });
    blocks.push(
      h(
        "section",
        { class: "card" },
        h("h2", null, "Inferences per day (30 days)"),
        barChart(
          points.map((p) => ({ label: day(p.t), value: p.inferences })),
          "inferences per day",
        ),
      ),
    );
  }
  if (ctx.can("entitlements:read")) {
    const { entitlements } = await ctx.api.get<{ entitlements: Entitlement[] }>("/v1/entitlements", {
      limit: 20,
    });
    const live = entitlements.filter((e) => e.revoked_at === null);
    blocks.push(
      h(
        "section",
        { class: "card" },
        h("h2", null, "Quota use this period"),
        live.length
          ? h(
              "ul",
              { class: "quota-list plain" },
              live.map((e) =>
                h(
                  "li",
                  null,
                  h(
                    "a",
                    { href: `#/entitlements?id=${encodeURIComponent(e.id)}` },
                    `${e.principal_name} · ${e.model_id}`,
                  ),
                  h("meter", {
                    min: 0,
                    max: e.quota,
                    value: e.quota_used + e.quota_reserved,
                    title: "used + reserved",
                  }),
                  h("small", { class: "muted" }, `${num(e.quota_used + e.quota_reserved)} / ${num(e.quota)}`),
                ),
              ),
            )
          : h("p", { class: "muted" }, "No live entitlements."),
      ),
    );
  }
  if (ctx.can("audit:read")) {
    const { checkpoints } = await ctx.api.get<{ checkpoints: Checkpoint[] }>("/v1/audit/checkpoints", {
      limit: 1000,
    });
    const last = checkpoints.at(-1);
    blocks.push(
      h(
        "section",
        { class: "card", "data-testid": "audit-status" },
        h("h2", null, "Audit chain"),
        h(
          "p",
          null,
          last
            ? `Last checkpoint: ${num(last.size)} entries, signed ${when(last.at)}.`
            : "No checkpoint signed yet.",
        ),
        ctx.verified
          ? h(
              "p",
              { class: ctx.verified.result.ok ? "good" : "bad" },
              ctx.verified.result.ok
                ? `Verified in this tab at ${when(ctx.verified.at)}: ${num(ctx.verified.result.entries)} entries.`
                : `NOT verified (${when(ctx.verified.at)}): ${ctx.verified.result.problem}`,
            )
          : h(
              "p",
              { class: "muted" },
              "Not verified in this tab yet: ",
              h("a", { href: "#/audit" }, "verify it in the browser"),
            ),
      ),
    );
  }
  if (ctx.can("principals:read")) {
    const { principals } = await ctx.api.get<{ principals: unknown[] }>("/v1/admin/principals", {
      limit: 1000,
    });
    stats.push(
      stat("principals", h("a", { href: "#/principals" }, num(principals.length)), "stat-principals"),
    );
  }
  mount(
    root,
    h("h1", null, "Overview"),
    stats.length ? h("div", { class: "stats" }, stats) : null,
    h("div", { class: "grid" }, blocks),
    stats.length + blocks.length === 0
      ? h("p", { class: "muted" }, "This role reads nothing the console shows.")
      : null,
  );
}
