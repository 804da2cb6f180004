/**
 * The operations console: served by `modelvault serve` at /console/, same origin as the API.
 * Sign-in takes an API key or an OIDC ID token; what the signed-in principal may do (GET /v1/me)
 * decides which pages and buttons exist. The server checks every request anyway.
 */
import { Api, ApiError } from "./api.js";
import { type ConsoleContext, makeContext } from "./context.js";
import { field, h, mount } from "./dom.js";
import { anomaliesPage } from "./pages/anomalies.js";
import { auditPage } from "./pages/audit.js";
import { devicesPage } from "./pages/devices.js";
import { entitlementsPage } from "./pages/entitlements.js";
import { modelsPage } from "./pages/models.js";
import { overviewPage } from "./pages/overview.js";
import { principalsPage } from "./pages/principals.js";
import { usagePage } from "./pages/usage.js";
import { remember, rememberedCredential } from "./session.js";
import type { Me } from "./types.js";

type PageFn = (ctx: ConsoleContext, root: HTMLElement, params: URLSearchParams) => Promise<void>;

const PAGES: { path: string; title: string; needs?: string; render: PageFn }[] = [
  { path: "overview", title: "Overview", render: overviewPage },
  { path: "models", title: "Models", needs: "models:read", render: modelsPage },
  { path: "entitlements", title: "Entitlements", needs: "entitlements:read", render: entitlementsPage },
  { path: "devices", title: "Devices", needs: "devices:read", render: devicesPage },
  { path: "usage", title: "Usage", needs: "usage:read", render: usagePage },
  { path: "anomalies", title: "Anomalies", needs: "anomalies:read", render: anomaliesPage },
  { path: "audit", title: "Audit", needs: "audit:read", render: auditPage },
  { path: "principals", title: "Principals", needs: "principals:read", render: principalsPage },
];

const app = document.getElementById("app") as HTMLElement;

function signIn(message?: string): void {
  const credential = h("input", {
    type: "password",
    name: "credential",
    autocomplete: "off",
    required: true,
    placeholder: "mvk_… or an ID token",
  });
  const keep = h("input", { type: "checkbox", name: "keep" });
  const form = h(
    "form",
    { class: "card signin", "aria-label": "sign in" },
    h("h1", null, "ModelVault console"),
    h(
      "p",
      { class: "muted" },
      "Sign in with your API key or an OIDC ID token. It is kept in this tab's memory, or for this tab's session if you ask: never in local storage.",
    ),
    message ? h("p", { class: "notice error", role: "alert" }, message) : null,
    field("API key or ID token", credential),
    h("label", { class: "check" }, keep, " Stay signed in in this tab"),
    h("button", { type: "submit", class: "primary" }, "Sign in"),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void start(credential.value.trim(), keep.checked);
  });
  mount(app, h("main", { class: "center" }, form));
  credential.focus();
}

async function start(credential: string, keep: boolean): Promise<void> {
  const api = new Api(credential);
  let me: Me;
  try {
    me = await api.get<Me>("/v1/me");
  } catch (e) {
    remember(undefined);
    signIn(
      e instanceof ApiError && e.status === 401
        ? "That credential was not accepted."
        : `Sign-in failed: ${(e as Error).message}`,
    );
    return;
  }
  if (keep) remember(credential);
  const status = h("div", { class: "status", "aria-live": "polite" });
  const ctx = makeContext(api, me, status);
  const visible = PAGES.filter((p) => !p.needs || ctx.can(p.needs));
  const nav = h(
    "nav",
    { class: "nav", "aria-label": "pages" },
    visible.map((p) => h("a", { href: `#/${p.path}`, "data-page": p.path }, p.title)),
  );
  const content = h("main", { class: "content" });
  const signOut = () => {
    remember(undefined);
    window.removeEventListener("hashchange", onHash);
    location.hash = "";
    signIn();
  };
  mount(
    app,
    h(
      "header",
      { class: "top" },
      h("a", { href: "#/overview", class: "brand" }, "ModelVault"),
      nav,
      h(
        "div",
        { class: "who" },
        h(
          "span",
          { title: me.id, "data-testid": "who" },
          `${me.name ?? me.id} · ${me.roles.join(", ") || "no role"}`,
        ),
        h("button", { type: "button", class: "small", onClick: signOut }, "Sign out"),
      ),
    ),
    status,
    content,
  );
  async function route(): Promise<void> {
    const [path = "overview", query = ""] = location.hash.replace(/^#\/?/, "").split("?");
    const page = visible.find((p) => p.path === path) ?? visible[0];
    if (!page) return;
    for (const a of nav.querySelectorAll("a"))
      a.toggleAttribute("aria-current", a.dataset.page === page.path);
    document.title = `${page.title} · ModelVault console`;
    // Each visit renders into its own element: a slower page still loading when the user moves
    // on finishes into a detached element instead of over the page now shown.
    const view = h("div", null, h("p", { class: "muted" }, "Loading…"));
    mount(content, view);
    try {
      await page.render(ctx, view, new URLSearchParams(query));
    } catch (e) {
      if (!view.isConnected) return;
      if (e instanceof ApiError && e.status === 401)
        return signIn("Your credential stopped working (revoked or expired).");
      mount(
        view,
        h(
          "p",
          { class: "notice error", role: "alert" },
          `Could not load ${page.title}: ${(e as Error).message}`,
        ),
      );
    }
  }
  const onHash = () => void route();
  window.addEventListener("hashchange", onHash);
  await route();
}

const kept = rememberedCredential();
if (kept) void start(kept, true);
else signIn();
