import type { JSONWebKeySet } from "jose";
import { verifyAuditChain } from "../audit-verify.js";
import type { ConsoleContext } from "../context.js";
import { download, h, mount, table } from "../dom.js";
import { num, short, when } from "../format.js";
import { paged } from "../paged.js";
import type { AuditEntry, Checkpoint } from "../types.js";

const PAGE = 1000;

/** Browse the log newest first; verify chain and checkpoints here with Web Crypto; export. */
export async function auditPage(ctx: ConsoleContext, root: HTMLElement): Promise<void> {
  const result = h("div", { "aria-live": "polite", "data-testid": "verify-result" });
  const fetchAll = async () => {
    const all: AuditEntry[] = [];
    for (;;) {
      const { entries } = await ctx.api.get<{ entries: AuditEntry[] }>("/v1/audit", {
        after: all.length,
        limit: PAGE,
      });
      all.push(...entries);
      if (entries.length < PAGE) return all;
    }
  };
  const checkpoints = async () => {
    const all: Checkpoint[] = [];
    for (;;) {
      const { checkpoints: page } = await ctx.api.get<{ checkpoints: Checkpoint[] }>(
        "/v1/audit/checkpoints",
        {
          after: all.at(-1)?.size ?? 0,
          limit: PAGE,
        },
      );
      all.push(...page);
      if (page.length < PAGE) return all;
    }
  };
  const verify = async () => {
    mount(result, h("p", { class: "muted" }, "Verifying…"));
    try {
      // The keys are the server's published ones: the same a verifier elsewhere would fetch.
      const jwks = (await (
        await fetch("/.well-known/jwks.json", { cache: "no-store" })
      ).json()) as JSONWebKeySet;
      const tokens = (await checkpoints()).map((c) => c.token);
      const r = await verifyAuditChain(
        async (after) =>
          (await ctx.api.get<{ entries: AuditEntry[] }>("/v1/audit", { after, limit: PAGE })).entries,
        tokens,
        jwks,
        (n) => mount(result, h("p", { class: "muted" }, `Verifying… ${num(n)} entries`)),
      );
      ctx.verified = { result: r, at: Math.floor(Date.now() / 1000) };
      mount(
        result,
        h(
          "p",
          { class: `notice ${r.ok ? "ok" : "error"}`, role: r.ok ? "status" : "alert" },
          r.ok
            ? `Verified: ${num(r.entries)} entries chain correctly; ${r.checkpoints} signed checkpoints match${r.latestCheckpoint ? ` (latest at entry ${num(r.latestCheckpoint)})` : ""}.`
            : `NOT verified: ${r.problem}`,
        ),
      );
    } catch (e) {
      mount(
        result,
        h("p", { class: "notice error", role: "alert" }, `Verification failed: ${(e as Error).message}`),
      );
    }
  };
  const exportLog = async () => {
    const [entries, cps] = await Promise.all([fetchAll(), checkpoints()]);
    download(
      "modelvault-audit.json",
      "application/json",
      `${JSON.stringify({ entries, checkpoints: cps }, null, 1)}\n`,
    );
  };
  const list = h("div");
  mount(
    root,
    h("h1", null, "Audit log"),
    h(
      "div",
      { class: "row wrap" },
      h(
        "button",
        { type: "button", class: "primary", onClick: () => void verify() },
        "Verify chain and checkpoints",
      ),
      h("button", { type: "button", onClick: () => void exportLog() }, "Export (JSON)"),
    ),
    result,
    list,
  );
  await paged(
    list,
    Number.MAX_SAFE_INTEGER,
    async (before: number) => {
      const { entries } = await ctx.api.get<{ entries: AuditEntry[] }>("/v1/audit", { before, limit: 50 });
      return { rows: entries, next: entries.length === 50 ? entries.at(-1)?.seq : undefined };
    },
    (rows) =>
      table(
        ["#", "At", "Actor", "Action", "Outcome", "Subject", "Detail", "Hash"],
        rows,
        (e) => [
          e.seq,
          when(e.at),
          h("code", { title: e.actor }, short(e.actor)),
          e.action,
          e.outcome === "success" ? e.outcome : h("span", { class: "bad" }, e.outcome),
          h("code", { title: e.subject }, short(e.subject)),
          h("code", { class: "wrap" }, e.detail.length > 80 ? `${e.detail.slice(0, 80)}…` : e.detail),
          h("code", { title: e.hash }, short(e.hash, 10)),
        ],
        "The log is empty.",
      ),
  );
}
