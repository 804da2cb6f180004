import type { Api } from "./api.js";
import type { VerifyResult } from "./audit-verify.js";
import { h, mount } from "./dom.js";
import { short, when } from "./format.js";
import type { AuditEntry, Me } from "./types.js";

/** What every page gets: the API, who is signed in, and where to say what happened. */
export interface ConsoleContext {
  api: Api;
  me: Me;
  /** Whether the signed-in principal holds a permission: actions it lacks are not drawn. */
  can(permission: string): boolean;
  /** Shows an outcome in the status area; for actions, the audit entry they produced. */
  notify(message: string, kind?: "ok" | "error"): void;
  /** After an action: fetches and shows the newest audit entry of the caller's own actions. */
  recorded(what: string): Promise<void>;
  /** The last in-browser verification of the audit log in this tab, for the overview. */
  verified: { result: VerifyResult; at: number } | undefined;
}

export function makeContext(api: Api, me: Me, status: HTMLElement): ConsoleContext {
  const notify = (message: string, kind: "ok" | "error" = "ok") =>
    mount(
      status,
      h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, message),
    );
  return {
    api,
    me,
    can: (p) => me.permissions.includes(p),
    notify,
    verified: undefined,
    async recorded(what) {
      const { entries } = await api.get<{ entries: AuditEntry[] }>("/v1/me/audit", { limit: 1 });
      const e = entries[0];
      mount(
        status,
        h(
          "div",
          { class: "notice ok", role: "status", "data-testid": "audit-receipt" },
          h("strong", null, what),
          e
            ? h(
                "div",
                { class: "receipt" },
                `Audit entry #${e.seq} · ${e.action} · ${e.outcome} · ${e.subject} · ${when(e.at)} · hash `,
                h("code", { title: e.hash }, short(e.hash, 16)),
              )
            : null,
        ),
      );
    },
  };
}
