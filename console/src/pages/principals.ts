import type { ConsoleContext } from "../context.js";
import { confirmAction, field, h, mount, table } from "../dom.js";
import { short, when } from "../format.js";
import { byOffset, paged } from "../paged.js";
import type { Principal } from "../types.js";

const ROLES = ["admin", "publisher", "licensor", "auditor", "client"];

function roleBoxes(selected: readonly string[]): { el: HTMLElement; value: () => string[] } {
  const boxes = ROLES.map((r) =>
    h("input", { type: "checkbox", name: "role", value: r, checked: selected.includes(r) }),
  );
  return {
    el: h(
      "fieldset",
      { class: "roles" },
      h("legend", null, "Roles"),
      boxes.map((b, i) => h("label", { class: "check" }, b, ` ${ROLES[i]}`)),
    ),
    value: () => boxes.filter((b) => b.checked).map((b) => b.value),
  };
}

/** Admins: principals, their roles and API keys. A new key's secret is shown once, here. */
export async function principalsPage(
  ctx: ConsoleContext,
  root: HTMLElement,
  params: URLSearchParams,
): Promise<void> {
  const id = params.get("id");
  if (id) return principalDetail(ctx, root, id);
  const name = h("input", { name: "name", required: true, maxlength: 200 });
  const roles = roleBoxes([]);
  const form = h(
    "form",
    { class: "form-grid", "aria-label": "create principal" },
    field("Name", name),
    h("div", { class: "span" }, roles.el),
    h("div", { class: "row end span" }, h("button", { type: "submit", class: "primary" }, "Create")),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void (async () => {
      if (
        !(await confirmAction(
          "Create principal?",
          `${name.value} with roles ${roles.value().join(", ") || "none"}.`,
          "Create",
          false,
        ))
      )
        return;
      try {
        const r = await ctx.api.send<{ id: string }>("POST", "/v1/admin/principals", {
          name: name.value.trim(),
          roles: roles.value(),
        });
        await ctx.recorded(`Created principal ${r.id}.`);
        location.hash = `#/principals?id=${encodeURIComponent(r.id)}`;
      } catch (err) {
        ctx.notify(`Create failed: ${(err as Error).message}`, "error");
      }
    })();
  });
  const list = h("div");
  mount(
    root,
    h("h1", null, "Principals and keys"),
    ctx.can("principals:write")
      ? h("details", { class: "card" }, h("summary", null, "Create a principal"), form)
      : null,
    list,
  );
  await paged(
    list,
    0,
    byOffset(
      50,
      async (after, limit) =>
        (await ctx.api.get<{ principals: Principal[] }>("/v1/admin/principals", { after, limit })).principals,
    ),
    (rows) =>
      table(["Principal", "Name", "Roles", "OIDC", "Created", "Status"], rows, (p) => [
        h("a", { href: `#/principals?id=${encodeURIComponent(p.id)}` }, h("code", null, p.id)),
        p.name,
        p.roles.join(", ") || "—",
        p.oidc_subject ? `${p.oidc_issuer} · ${p.oidc_subject}` : "—",
        when(p.created_at),
        p.disabled_at
          ? h("span", { class: "badge alert" }, "disabled")
          : h("span", { class: "badge ok" }, "active"),
      ]),
  );
}

async function principalDetail(ctx: ConsoleContext, root: HTMLElement, id: string): Promise<void> {
  const { principals } = await ctx.api.get<{ principals: Principal[] }>("/v1/admin/principals", {
    limit: 1000,
  });
  const p = principals.find((x) => x.id === id);
  if (!p) return mount(root, h("p", { class: "notice error" }, `No principal ${id}.`));
  const { keys } = await ctx.api.get<{
    keys: { id: string; created_at: number; revoked_at: number | null }[];
  }>(`/v1/admin/principals/${encodeURIComponent(id)}/api-keys`, { limit: 1000 });
  const again = () => principalDetail(ctx, root, id);
  const roles = roleBoxes(p.roles);
  const roleForm = h(
    "form",
    { class: "form-grid", "aria-label": "roles" },
    h("div", { class: "span" }, roles.el),
    h("div", { class: "row end span" }, h("button", { type: "submit" }, "Save roles")),
  );
  roleForm.addEventListener("submit", (e) => {
    e.preventDefault();
    void (async () => {
      if (
        !(await confirmAction(
          "Change roles?",
          `${p.name}: ${roles.value().join(", ") || "none"}.`,
          "Save",
          false,
        ))
      )
        return;
      try {
        await ctx.api.send("PUT", `/v1/admin/principals/${encodeURIComponent(id)}/roles`, {
          roles: roles.value(),
        });
        await ctx.recorded(`Changed roles of ${p.name}.`);
        await again();
      } catch (err) {
        ctx.notify(`Change failed: ${(err as Error).message}`, "error");
      }
    })();
  });
  const secret = h("div", { "data-testid": "new-key" });
  const issue = async () => {
    if (
      !(await confirmAction(
        "Issue an API key?",
        `A new key for ${p.name}. Its secret is shown once.`,
        "Issue",
        false,
      ))
    )
      return;
    try {
      const k = await ctx.api.send<{ id: string; token: string }>(
        "POST",
        `/v1/admin/principals/${encodeURIComponent(id)}/api-keys`,
      );
      await ctx.recorded(`Issued API key ${k.id}.`);
      await again();
      mount(
        root.querySelector("[data-testid=new-key]") ?? secret,
        h(
          "div",
          { class: "notice ok" },
          h("p", null, "Copy it now: it is not shown again and the server keeps only its hash."),
          h("code", { class: "token wrap" }, k.token),
        ),
      );
    } catch (err) {
      ctx.notify(`Issue failed: ${(err as Error).message}`, "error");
    }
  };
  const revoke = async (keyId: string) => {
    if (
      !(await confirmAction(
        `Revoke key ${short(keyId)}?`,
        "Requests with it are refused from now on.",
        "Revoke",
      ))
    )
      return;
    try {
      await ctx.api.send("DELETE", `/v1/admin/api-keys/${encodeURIComponent(keyId)}`);
      await ctx.recorded(`Revoked API key ${short(keyId)}.`);
      await again();
    } catch (err) {
      ctx.notify(`Revoke failed: ${(err as Error).message}`, "error");
    }
  };
  mount(
    root,
    h("p", null, h("a", { href: "#/principals" }, "← Principals")),
    h("h1", null, p.name, " ", h("code", null, p.id)),
    ctx.can("roles:write")
      ? h("section", { class: "card" }, h("h2", null, "Roles"), roleForm)
      : h("p", null, `Roles: ${p.roles.join(", ")}`),
    h("h2", null, "API keys"),
    ctx.can("api-keys:write")
      ? h(
          "div",
          { class: "row" },
          h("button", { type: "button", class: "primary", onClick: () => void issue() }, "Issue API key"),
        )
      : null,
    secret,
    table(
      ["Key", "Created", "Status", ""],
      keys,
      (k) => [
        h("code", null, k.id),
        when(k.created_at),
        k.revoked_at
          ? h("span", { class: "badge alert" }, `revoked ${when(k.revoked_at)}`)
          : h("span", { class: "badge ok" }, "active"),
        ctx.can("api-keys:write") && !k.revoked_at
          ? h("button", { type: "button", class: "small danger", onClick: () => void revoke(k.id) }, "Revoke")
          : null,
      ],
      "No API key.",
    ),
  );
}
