import { barChart } from "../chart.js";
import type { ConsoleContext } from "../context.js";
import { download, field, h, mount, table } from "../dom.js";
import { day, num, when } from "../format.js";
import type { UsagePoint } from "../types.js";

/** Inferences over time for a model, an entitlement or a device; exported as CSV. */
export async function usagePage(
  ctx: ConsoleContext,
  root: HTMLElement,
  params: URLSearchParams,
): Promise<void> {
  const filter = {
    model: params.get("model") ?? "",
    entitlement: params.get("entitlement") ?? "",
    device: params.get("device") ?? "",
    bucket: params.get("bucket") === "3600" ? "3600" : "86400",
  };
  const res = await ctx.api.get<{ from: number; to: number; bucket: number; points: UsagePoint[] }>(
    "/v1/usage/series",
    filter,
  );
  const inputs = {
    model: h("input", { name: "model", value: filter.model, placeholder: "any" }),
    entitlement: h("input", { name: "entitlement", value: filter.entitlement, placeholder: "any" }),
    device: h("input", { name: "device", value: filter.device, placeholder: "any" }),
  };
  const bucket = h(
    "select",
    { name: "bucket" },
    h("option", { value: "86400", selected: filter.bucket === "86400" }, "per day"),
    h("option", { value: "3600", selected: filter.bucket === "3600" }, "per hour"),
  );
  const form = h(
    "form",
    { class: "row wrap", "aria-label": "filter" },
    field("Model", inputs.model),
    field("Entitlement", inputs.entitlement),
    field("Device", inputs.device),
    field("Points", bucket),
    h("button", { type: "submit" }, "Show"),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const q = new URLSearchParams({ bucket: bucket.value });
    for (const [k, el] of Object.entries(inputs)) if (el.value.trim()) q.set(k, el.value.trim());
    location.hash = `#/usage?${q}`;
  });
  const label = (t: number) =>
    res.bucket === 3600 ? new Date(t * 1000).toISOString().slice(11, 16) : day(t);
  const csv = () =>
    [
      "bucket_start_utc,bucket_seconds,inferences,reports",
      ...res.points.map(
        (p) => `${new Date(p.t * 1000).toISOString()},${res.bucket},${p.inferences},${p.reports}`,
      ),
    ].join("\n");
  const total = res.points.reduce((n, p) => n + p.inferences, 0);
  mount(
    root,
    h("h1", null, "Usage"),
    form,
    h(
      "section",
      { class: "card" },
      h(
        "div",
        { class: "row between" },
        h("h2", null, `${num(total)} inferences, ${when(res.from)} → ${when(res.to)}`),
        h(
          "button",
          {
            type: "button",
            "data-testid": "export-csv",
            onClick: () => download("modelvault-usage.csv", "text/csv", `${csv()}\n`),
          },
          "Export CSV",
        ),
      ),
      barChart(
        res.points.map((p) => ({ label: label(p.t), value: p.inferences })),
        "inferences over time",
      ),
    ),
    table(
      ["From (UTC)", "Inferences", "Reports"],
      [...res.points].reverse(),
      (p) => [when(p.t), num(p.inferences), num(p.reports)],
      "No usage reported in this range.",
    ),
  );
}
