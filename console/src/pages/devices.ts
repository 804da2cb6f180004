import type { ConsoleContext } from "../context.js";
import { confirmAction, field, h, mount, table } from "../dom.js";
import { num, short, when } from "../format.js";
import { byOffset, paged } from "../paged.js";
import type { Device, License } from "../types.js";

const status = (revoked: number | null) =>
  revoked ? h("span", { class: "badge alert" }, "revoked") : h("span", { class: "badge ok" }, "active");

/** Devices (search by device, principal id or name; filter by status); `?id=` shows one. */
export async function devicesPage(
  ctx: ConsoleContext,
  root: HTMLElement,
  params: URLSearchParams,
): Promise<void> {
  const id = params.get("id");
  if (id) return deviceDetail(ctx, root, id);
  const q = h("input", {
    type: "search",
    name: "q",
    value: params.get("q") ?? "",
    placeholder: "device, principal id or name",
  });
  const st = h(
    "select",
    { name: "status" },
    ["", "active", "revoked"].map((v) =>
      h("option", { value: v, selected: (params.get("status") ?? "") === v }, v || "any"),
    ),
  );
  const search = h(
    "form",
    { class: "row wrap", role: "search" },
    field("Search", q),
    field("Status", st),
    h("button", { type: "submit" }, "Search"),
  );
  search.addEventListener("submit", (e) => {
    e.preventDefault();
    location.hash = `#/devices?${new URLSearchParams({ q: q.value.trim(), status: st.value })}`;
  });
  const list = h("div");
  mount(root, h("h1", null, "Devices and licenses"), search, list);
  await paged(
    list,
    0,
    byOffset(
      50,
      async (after, limit) =>
        (
          await ctx.api.get<{ devices: Device[] }>("/v1/devices", {
            after,
            limit,
            q: params.get("q") ?? undefined,
            status: params.get("status") ?? undefined,
          })
        ).devices,
    ),
    (rows) =>
      table(
        ["Device", "Principal", "First seen", "Last seen", "Reports", "Status"],
        rows,
        (d) => [
          h(
            "a",
            { href: `#/devices?id=${encodeURIComponent(d.id)}`, title: d.id, "data-testid": "device-link" },
            short(d.id),
          ),
          h("span", { title: d.principal_id }, d.principal_name),
          when(d.first_seen),
          when(d.last_seen),
          num(d.report_seq),
          status(d.revoked_at),
        ],
        "No device has asked for a license yet.",
      ),
  );
}

interface DeviceDetail {
  device: Device;
  entitlements: { id: string; model_id: string; added_at: number; revoked_at: number | null }[];
}

interface Report {
  seq: number;
  hash: string;
  prev: string;
  license_jti: string;
  count: number;
  window_from: number;
  window_to: number;
  received_at: number;
}

async function deviceDetail(ctx: ConsoleContext, root: HTMLElement, id: string): Promise<void> {
  const { device: d, entitlements } = await ctx.api.get<DeviceDetail>(
    `/v1/devices/${encodeURIComponent(id)}`,
  );
  const act = async (what: string, path: string, body: string) => {
    if (!(await confirmAction(`${what}?`, body, "Revoke"))) return;
    try {
      await ctx.api.send("POST", path);
      await ctx.recorded(`${what}: done.`);
      await deviceDetail(ctx, root, id);
    } catch (e) {
      ctx.notify(`${what} failed: ${(e as Error).message}`, "error");
    }
  };
  const licenses = h("div");
  const chain = h("div");
  mount(
    root,
    h("p", null, h("a", { href: "#/devices" }, "← Devices")),
    h("h1", null, "Device ", h("code", { class: "wrap" }, d.id)),
    h(
      "p",
      null,
      status(d.revoked_at),
      ` ${d.principal_name} (${d.principal_id}) · first seen ${when(d.first_seen)} · last seen ${when(d.last_seen)} · report chain at #${d.report_seq}`,
    ),
    ctx.can("devices:revoke") && !d.revoked_at
      ? h(
          "div",
          { class: "row" },
          h(
            "button",
            {
              type: "button",
              class: "danger",
              "data-testid": "revoke-device",
              onClick: () =>
                void act(
                  `Revoke device ${short(d.id)}`,
                  `/v1/devices/${encodeURIComponent(d.id)}/revoke`,
                  "Every license of this device is refused at its next renewal, for every entitlement.",
                ),
            },
            "Revoke device",
          ),
        )
      : null,
    h("h2", null, "Entitlements"),
    table(["Entitlement", "Model", "Added", "Status"], entitlements, (e) => [
      h("a", { href: `#/entitlements?id=${encodeURIComponent(e.id)}` }, short(e.id)),
      e.model_id,
      when(e.added_at),
      status(e.revoked_at),
    ]),
    ctx.can("licenses:read") ? [h("h2", null, "Licenses"), licenses] : null,
    h("h2", null, "Usage chain"),
    chain,
  );
  if (ctx.can("licenses:read"))
    await paged(
      licenses,
      0,
      byOffset(
        20,
        async (after, limit) =>
          (await ctx.api.get<{ licenses: License[] }>("/v1/licenses", { device: id, after, limit })).licenses,
      ),
      (rows) =>
        table(["License", "Model", "Issued", "Expires", "Used / allowance", "State", ""], rows, (l) => [
          h("code", { title: l.jti }, short(l.jti)),
          `${l.model_id} v${l.model_version}`,
          when(l.issued_at),
          when(l.expires_at),
          `${num(l.used)} / ${num(l.allowance)}`,
          l.revoked_at ? "revoked" : l.released_at ? "settled" : "open",
          ctx.can("licenses:revoke") && !l.revoked_at && !l.released_at
            ? h(
                "button",
                {
                  type: "button",
                  class: "small danger",
                  onClick: () =>
                    void act(
                      `Revoke license ${short(l.jti)}`,
                      `/v1/licenses/${encodeURIComponent(l.jti)}/revoke`,
                      "Its renewal is refused.",
                    ),
                },
                "Revoke",
              )
            : null,
        ]),
    );
  // The chain is read oldest first by sequence: the cursor is the last seq shown.
  await paged(
    chain,
    0,
    async (after: number) => {
      const { reports } = await ctx.api.get<{ reports: Report[] }>(
        `/v1/devices/${encodeURIComponent(id)}/usage`,
        {
          after,
          limit: 20,
        },
      );
      return { rows: reports, next: reports.length === 20 ? (reports.at(-1)?.seq ?? undefined) : undefined };
    },
    (rows) =>
      table(
        ["#", "Inferences", "Window", "Received", "Hash", "Previous"],
        rows,
        (r) => [
          r.seq,
          num(r.count),
          `${when(r.window_from)} → ${when(r.window_to).slice(11)}`,
          when(r.received_at),
          h("code", { title: r.hash }, short(r.hash, 10)),
          h("code", { title: r.prev }, short(r.prev, 10)),
        ],
        "No usage reported yet.",
      ),
  );
}
