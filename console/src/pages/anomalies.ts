import { distributionChart } from "../chart.js";
import type { ConsoleContext } from "../context.js";
import { askText, type Child, field, h, mount } from "../dom.js";
import { short, when } from "../format.js";
import { paged } from "../paged.js";
import type { Anomaly } from "../types.js";

// The server's anomaly kinds (src/server/monitoring/anomalies.ts).
const KINDS = [
  "output_outlier",
  "output_drift",
  "usage_gap",
  "usage_fork",
  "usage_resync",
  "usage_rollback",
  "clock_rollback",
  "quota_overrun",
  "device_limit",
  "request_spike",
  "denial_burst",
  "privileged_key_issued",
];

function evidence(a: Anomaly): Child {
  const d = a.detail as { observedShare?: number[]; referenceShare?: number[] };
  return h(
    "details",
    null,
    h("summary", null, "Evidence"),
    Array.isArray(d.observedShare) && Array.isArray(d.referenceShare)
      ? [
          distributionChart(d.observedShare, d.referenceShare, "observed share per bin beside the reference"),
          h(
            "p",
            { class: "legend" },
            h("span", { class: "key observed" }, "observed"),
            h("span", { class: "key reference" }, "reference"),
          ),
        ]
      : null,
    h("pre", { class: "detail" }, JSON.stringify(a.detail, null, 2)),
  );
}

/** Anomalies, newest first, filtered by kind and state; auditors acknowledge them (audited). */
export async function anomaliesPage(
  ctx: ConsoleContext,
  root: HTMLElement,
  params: URLSearchParams,
): Promise<void> {
  const kind = h(
    "select",
    { name: "kind" },
    h("option", { value: "" }, "any"),
    KINDS.map((k) => h("option", { value: k, selected: params.get("kind") === k }, k)),
  );
  const state = h(
    "select",
    { name: "open" },
    [
      ["", "any"],
      ["true", "open"],
      ["false", "acknowledged"],
    ].map(([v, l]) => h("option", { value: v as string, selected: (params.get("open") ?? "") === v }, l)),
  );
  const form = h(
    "form",
    { class: "row wrap", "aria-label": "filter" },
    field("Kind", kind),
    field("State", state),
    h("button", { type: "submit" }, "Filter"),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    location.hash = `#/anomalies?${new URLSearchParams({ kind: kind.value, open: state.value })}`;
  });
  const acknowledge = async (a: Anomaly) => {
    const note = await askText(
      `Acknowledge anomaly #${a.id}?`,
      `${a.kind}: recorded in the audit log with your note.`,
      "Note",
      "Acknowledge",
    );
    if (!note) return;
    try {
      await ctx.api.send("POST", `/v1/anomalies/${a.id}/acknowledge`, { note });
      await ctx.recorded(`Acknowledged anomaly #${a.id}.`);
      await anomaliesPage(ctx, root, params);
    } catch (e) {
      ctx.notify(`Acknowledge failed: ${(e as Error).message}`, "error");
    }
  };
  const list = h("div");
  mount(root, h("h1", null, "Anomalies"), form, list);
  await paged(
    list,
    Number.MAX_SAFE_INTEGER,
    async (before: number) => {
      const { anomalies } = await ctx.api.get<{ anomalies: Anomaly[] }>("/v1/anomalies", {
        before,
        limit: 25,
        kind: params.get("kind") ?? undefined,
        open: params.get("open") ?? undefined,
      });
      return { rows: anomalies, next: anomalies.length === 25 ? anomalies.at(-1)?.id : undefined };
    },
    (rows) =>
      rows.length === 0
        ? h("p", { class: "muted" }, "No anomaly matches.")
        : h(
            "ul",
            { class: "plain" },
            rows.map((a) =>
              h(
                "li",
                { class: "card", "data-testid": "anomaly", "data-kind": a.kind },
                h(
                  "div",
                  { class: "row between" },
                  h(
                    "div",
                    null,
                    h("span", { class: `badge ${a.severity === "alert" ? "alert" : "warning"}` }, a.severity),
                    " ",
                    h("strong", null, a.kind),
                    ` #${a.id} · ${when(a.created_at)}`,
                    a.device_id
                      ? [
                          " · device ",
                          h(
                            "a",
                            { href: `#/devices?id=${encodeURIComponent(a.device_id)}` },
                            short(a.device_id),
                          ),
                        ]
                      : null,
                    a.subject ? ` · ${a.subject}` : null,
                  ),
                  a.acknowledged_at
                    ? h(
                        "span",
                        { class: "muted" },
                        `acknowledged ${when(a.acknowledged_at)} by ${short(a.acknowledged_by ?? "")}: ${a.acknowledgement}`,
                      )
                    : ctx.can("anomalies:acknowledge")
                      ? h(
                          "button",
                          { type: "button", class: "small", onClick: () => void acknowledge(a) },
                          "Acknowledge",
                        )
                      : null,
                ),
                evidence(a),
              ),
            ),
          ),
  );
}
