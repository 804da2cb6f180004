import type { ConsoleContext } from "../context.js";
import { confirmAction, field, h, mount, table } from "../dom.js";
import { num, short, when } from "../format.js";
import { byOffset, paged } from "../paged.js";
import type { Entitlement, Model } from "../types.js";
import { entitlementDetail } from "./entitlement-detail.js";

const DAY = 86400;

/** Entitlements with quota in use; licensors grant, change and revoke. `?id=` shows one. */
export async function entitlementsPage(
  ctx: ConsoleContext,
  root: HTMLElement,
  params: URLSearchParams,
): Promise<void> {
  const id = params.get("id");
  if (id) return entitlementDetail(ctx, root, id);
  const list = h("div");
  mount(
    root,
    h("h1", null, "Entitlements"),
    ctx.can("entitlements:write") ? await grantForm(ctx, root) : null,
    list,
  );
  await paged(
    list,
    0,
    byOffset(
      50,
      async (after, limit) =>
        (await ctx.api.get<{ entitlements: Entitlement[] }>("/v1/entitlements", { after, limit }))
          .entitlements,
    ),
    (rows) =>
      table(
        ["Entitlement", "Principal", "Model", "Quota this period", "Devices", "Expires", "Status", ""],
        rows,
        (e) => [
          h("a", { href: `#/entitlements?id=${encodeURIComponent(e.id)}`, title: e.id }, short(e.id)),
          h("span", { title: e.principal_id }, e.principal_name),
          `${e.model_id} ≥ v${e.min_version}${e.max_version ? ` ≤ v${e.max_version}` : ""}`,
          h(
            "span",
            { class: "meter-cell" },
            h("meter", { min: 0, max: e.quota, value: e.quota_used + e.quota_reserved }),
            `${num(e.quota_used + e.quota_reserved)} / ${num(e.quota)}`,
          ),
          `${e.devices_used} / ${e.max_devices}`,
          when(e.expires_at),
          e.revoked_at
            ? h("span", { class: "badge alert" }, "revoked")
            : h("span", { class: "badge ok" }, "live"),
          ctx.can("entitlements:write") && !e.revoked_at
            ? h(
                "button",
                {
                  type: "button",
                  class: "small danger",
                  onClick: () => void revokeEntitlement(ctx, e, root),
                },
                "Revoke",
              )
            : null,
        ],
        "No entitlement granted yet.",
      ),
  );
}

export async function revokeEntitlement(
  ctx: ConsoleContext,
  e: Entitlement,
  root: HTMLElement,
): Promise<void> {
  const ok = await confirmAction(
    `Revoke entitlement ${short(e.id)}?`,
    `${e.principal_name} loses ${e.model_id}: no renewal is granted and open licenses are revoked at their next renewal.`,
    "Revoke",
  );
  if (!ok) return;
  try {
    await ctx.api.send("POST", `/v1/entitlements/${encodeURIComponent(e.id)}/revoke`);
    await ctx.recorded(`Revoked entitlement ${short(e.id)}.`);
    location.hash = "#/entitlements";
    await entitlementsPage(ctx, root, new URLSearchParams());
  } catch (err) {
    ctx.notify(`Revoke failed: ${(err as Error).message}`, "error");
  }
}

async function grantForm(ctx: ConsoleContext, root: HTMLElement): Promise<HTMLElement> {
  const { models } = await ctx.api.get<{ models: Model[] }>("/v1/models", { limit: 1000 });
  const ids = [...new Set(models.map((m) => m.id))];
  const input = (name: string, props: Record<string, string | number | boolean> = {}) =>
    h("input", { name, required: true, ...props });
  const principal = input("principal", { placeholder: "p_…", pattern: "[A-Za-z0-9][A-Za-z0-9._:\\-]*" });
  const model = h(
    "select",
    { name: "model", required: true },
    ids.map((m) => h("option", { value: m }, m)),
  );
  const quota = input("quota", { type: "number", min: 1, value: 10000 });
  const period = input("period", { type: "number", min: 1, value: 30 });
  const devices = input("devices", { type: "number", min: 1, value: 3 });
  const days = input("days", { type: "number", min: 1, value: 365 });
  const offline = input("offline", { type: "number", min: 0, value: 0 });
  const form = h(
    "form",
    { class: "form-grid", "aria-label": "grant" },
    field("Principal id", principal, "whom: a client principal's id"),
    field("Model", model),
    field("Quota (inferences per period)", quota),
    field("Period (days)", period),
    field("Devices at most", devices),
    field("Valid for (days)", days),
    field("Offline use (hours, 0 for none)", offline),
    h("div", { class: "row end span" }, h("button", { type: "submit", class: "primary" }, "Grant")),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void (async () => {
      const offlineSeconds = Number(offline.value) * 3600;
      const ok = await confirmAction(
        "Grant this entitlement?",
        `${principal.value} may use ${model.value} on up to ${devices.value} devices, ${quota.value} inferences per ${period.value} days.`,
        "Grant",
        false,
      );
      if (!ok) return;
      try {
        const r = await ctx.api.send<{ id: string }>("POST", "/v1/entitlements", {
          principalId: principal.value.trim(),
          modelId: model.value,
          scopes: offlineSeconds > 0 ? ["infer", "offline"] : ["infer"],
          quota: Number(quota.value),
          periodSeconds: Number(period.value) * DAY,
          maxDevices: Number(devices.value),
          offlineSeconds,
          expiresAt: Math.floor(Date.now() / 1000) + Number(days.value) * DAY,
        });
        await ctx.recorded(`Granted entitlement ${r.id}.`);
        await entitlementsPage(ctx, root, new URLSearchParams());
      } catch (err) {
        ctx.notify(`Grant failed: ${(err as Error).message}`, "error");
      }
    })();
  });
  return h("details", { class: "card" }, h("summary", null, "Grant an entitlement"), form);
}
