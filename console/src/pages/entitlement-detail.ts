import type { ConsoleContext } from "../context.js";
import { confirmAction, field, h, mount, table } from "../dom.js";
import { num, short, when } from "../format.js";
import type { Entitlement } from "../types.js";
import { revokeEntitlement } from "./entitlements.js";

interface Detail {
  entitlement: Omit<Entitlement, "principal_name" | "quota_used" | "quota_reserved">;
  period: { start: number; reserved: number; used: number };
  devices: { id: string; added_at: number; last_seen: number; revoked_at: number | null }[];
}

/** One entitlement: its limits, this period's quota, its devices; change, release, revoke. */
export async function entitlementDetail(ctx: ConsoleContext, root: HTMLElement, id: string): Promise<void> {
  const d = await ctx.api.get<Detail>(`/v1/entitlements/${encodeURIComponent(id)}`);
  const e = d.entitlement;
  const write = ctx.can("entitlements:write") && e.revoked_at === null;
  const release = async (device: string) => {
    const ok = await confirmAction(
      `Release device ${short(device)}?`,
      "Its slot is freed for another device; its open license for this entitlement is revoked.",
      "Release",
    );
    if (!ok) return;
    try {
      await ctx.api.send(
        "POST",
        `/v1/entitlements/${encodeURIComponent(id)}/devices/${encodeURIComponent(device)}/release`,
      );
      await ctx.recorded(`Released device ${short(device)}.`);
      await entitlementDetail(ctx, root, id);
    } catch (err) {
      ctx.notify(`Release failed: ${(err as Error).message}`, "error");
    }
  };
  mount(
    root,
    h("p", null, h("a", { href: "#/entitlements" }, "← Entitlements")),
    h("h1", null, `Entitlement ${e.id}`),
    h(
      "div",
      { class: "stats" },
      h(
        "div",
        { class: "stat" },
        h("div", { class: "value" }, `${num(d.period.used + d.period.reserved)} / ${num(e.quota)}`),
        h("div", { class: "label" }, `quota since ${when(d.period.start)}`),
      ),
      h(
        "div",
        { class: "stat" },
        h("div", { class: "value" }, `${e.devices_used} / ${e.max_devices}`),
        h("div", { class: "label" }, "devices"),
      ),
      h(
        "div",
        { class: "stat" },
        h("div", { class: "value" }, e.revoked_at ? "revoked" : "live"),
        h("div", { class: "label" }, `expires ${when(e.expires_at)}`),
      ),
    ),
    h(
      "p",
      { class: "muted" },
      `${e.principal_id} · ${e.model_id} ≥ v${e.min_version} · scopes ${e.scopes} · licenses ${e.license_ttl_seconds} s, ${num(e.license_allowance)} inferences each · offline ${e.offline_seconds} s`,
    ),
    write ? changeForm(ctx, root, e) : null,
    h("h2", null, "Devices"),
    table(
      ["Device", "Added", "Last seen", "Status", ""],
      d.devices,
      (x) => [
        h("a", { href: `#/devices?id=${encodeURIComponent(x.id)}`, title: x.id }, short(x.id)),
        when(x.added_at),
        when(x.last_seen),
        x.revoked_at
          ? h("span", { class: "badge alert" }, "revoked")
          : h("span", { class: "badge ok" }, "active"),
        write && ctx.can("devices:release")
          ? h("button", { type: "button", class: "small", onClick: () => void release(x.id) }, "Release")
          : null,
      ],
      "No device has used this entitlement yet.",
    ),
    write
      ? h(
          "div",
          { class: "row end" },
          h(
            "button",
            {
              type: "button",
              class: "danger",
              onClick: () =>
                void revokeEntitlement(
                  ctx,
                  { ...e, principal_name: e.principal_id, quota_used: 0, quota_reserved: 0 },
                  root,
                ),
            },
            "Revoke entitlement",
          ),
        )
      : null,
  );
}

function changeForm(ctx: ConsoleContext, root: HTMLElement, e: Detail["entitlement"]): HTMLElement {
  const quota = h("input", { name: "quota", type: "number", min: 1, value: e.quota });
  const devices = h("input", { name: "devices", type: "number", min: 1, value: e.max_devices });
  const form = h(
    "form",
    { class: "form-grid", "aria-label": "change" },
    field("Quota per period", quota),
    field("Devices at most", devices),
    h("div", { class: "row end span" }, h("button", { type: "submit", class: "primary" }, "Change")),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void (async () => {
      if (
        !(await confirmAction(
          "Change limits?",
          `Quota ${quota.value}, at most ${devices.value} devices.`,
          "Change",
          false,
        ))
      )
        return;
      try {
        await ctx.api.send("PUT", `/v1/entitlements/${encodeURIComponent(e.id)}`, {
          quota: Number(quota.value),
          maxDevices: Number(devices.value),
        });
        await ctx.recorded(`Changed entitlement ${short(e.id)}.`);
        await entitlementDetail(ctx, root, e.id);
      } catch (err) {
        ctx.notify(`Change failed: ${(err as Error).message}`, "error");
      }
    })();
  });
  return h("details", { class: "card" }, h("summary", null, "Change limits"), form);
}
