import type { ConsoleContext } from "../context.js";
import { askText, h, mount, table } from "../dom.js";
import { bytes, short, when } from "../format.js";
import { byOffset, paged } from "../paged.js";
import type { Model } from "../types.js";

interface Retirement {
  model_id: string;
  version: number;
  retired_by: string;
  retired_at: number;
  reason: string;
}

/** Registered versions with their publisher key and sizes; admins retire a version. */
export async function modelsPage(ctx: ConsoleContext, root: HTMLElement): Promise<void> {
  const list = h("div");
  const retired = h("div");
  mount(root, h("h1", null, "Models"), list, h("h2", null, "Retired versions"), retired);
  const retire = async (m: Model) => {
    const reason = await askText(
      `Retire ${m.id} v${m.version}?`,
      "No new license is issued for a retired version; licenses already issued run out.",
      "Reason (recorded in the audit log)",
      "Retire",
    );
    if (!reason) return;
    try {
      await ctx.api.send(
        "POST",
        `/v1/admin/models/${encodeURIComponent(m.id)}/versions/${m.version}/retire`,
        {
          reason,
        },
      );
      await ctx.recorded(`Retired ${m.id} v${m.version}.`);
      await modelsPage(ctx, root);
    } catch (e) {
      ctx.notify(`Retire failed: ${(e as Error).message}`, "error");
    }
  };
  await paged(
    list,
    0,
    byOffset(
      50,
      async (after, limit) => (await ctx.api.get<{ models: Model[] }>("/v1/models", { after, limit })).models,
    ),
    (rows) =>
      table(
        ["Model", "Version", "Publisher key", "Owner", "Registered", "Size", "Shards", "Monitoring", ""],
        rows,
        (m) => [
          h("strong", null, m.id),
          `v${m.version}`,
          m.publisher_kid ? h("code", { title: m.publisher_kid }, short(m.publisher_kid)) : "—",
          m.owner ? h("code", { title: m.owner }, short(m.owner)) : "—",
          when(m.registered_at),
          bytes(m.size),
          m.shards ?? "—",
          m.monitoring ? h("span", { class: "badge ok" }, "on") : h("span", { class: "muted" }, "off"),
          ctx.can("models:retire")
            ? h("button", { type: "button", class: "small danger", onClick: () => void retire(m) }, "Retire")
            : null,
        ],
        "No model registered yet.",
      ),
  );
  await paged(
    retired,
    0,
    byOffset(
      20,
      async (after, limit) =>
        (await ctx.api.get<{ retirements: Retirement[] }>("/v1/models/retirements", { after, limit }))
          .retirements,
    ),
    (rows) =>
      table(
        ["Model", "Version", "Retired", "By", "Reason"],
        rows,
        (r) => [
          r.model_id,
          `v${r.version}`,
          when(r.retired_at),
          h("code", null, short(r.retired_by)),
          r.reason,
        ],
        "None retired.",
      ),
  );
}
