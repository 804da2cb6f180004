/**
 * A few lines of DOM building instead of a framework. Under the console's CSP (no inline script,
 * no inline style) listeners are attached with addEventListener and nothing sets a style
 * attribute: sizes go in SVG attributes or <meter> values.
 */
export type Child = Node | string | number | null | undefined | false | Child[];
type Props = Record<string, string | number | boolean | null | undefined | ((e: Event) => void)>;

function append(el: Element, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

function apply(el: Element, props: Props | null | undefined): void {
  for (const [k, v] of Object.entries(props ?? {})) {
    if (typeof v === "function") el.addEventListener(k.slice(2).toLowerCase(), v);
    else if (v === true) el.setAttribute(k, "");
    else if (v !== false && v !== null && v !== undefined) el.setAttribute(k, String(v));
  }
}

/** An HTML element: h("button", { class: "danger", onClick: … }, "Revoke"). */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props?: Props | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  apply(el, props);
  append(el, children);
  return el;
}

/** An SVG element. */
export function s(tag: string, props?: Props | null, ...children: Child[]): SVGElement {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  apply(el, props);
  append(el, children);
  return el;
}

/** Replaces an element's content. */
export function mount(root: Element, ...children: Child[]): void {
  root.replaceChildren();
  append(root, children);
}

/** A table from rows; `cells` maps a row to its cells. */
export function table<T>(
  headers: string[],
  rows: readonly T[],
  cells: (row: T) => Child[],
  empty = "Nothing here yet.",
): HTMLElement {
  if (rows.length === 0) return h("p", { class: "muted" }, empty);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      null,
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          headers.map((x) => h("th", { scope: "col" }, x)),
        ),
      ),
      h(
        "tbody",
        null,
        rows.map((r) =>
          h(
            "tr",
            null,
            cells(r).map((c, i) => h("td", { "data-label": headers[i] ?? "" }, c)),
          ),
        ),
      ),
    ),
  );
}

/** A labelled form field. */
export function field(label: string, input: HTMLElement, hint?: string): HTMLElement {
  return h(
    "label",
    { class: "field" },
    h("span", null, label),
    input,
    hint ? h("small", { class: "muted" }, hint) : null,
  );
}

/** Asks before an action: a modal dialog naming what will happen. Resolves true on Confirm. */
export function confirmAction(title: string, body: string, verb: string, danger = true): Promise<boolean> {
  return new Promise((resolve) => {
    const dialog = h("dialog", { class: "confirm", "aria-label": title });
    const close = (ok: boolean) => {
      dialog.close();
      dialog.remove();
      resolve(ok);
    };
    mount(
      dialog,
      h("h2", null, title),
      h("p", null, body),
      h(
        "div",
        { class: "row end" },
        h("button", { type: "button", onClick: () => close(false) }, "Cancel"),
        h(
          "button",
          { type: "button", class: danger ? "danger" : "primary", onClick: () => close(true) },
          verb,
        ),
      ),
    );
    dialog.addEventListener("cancel", () => close(false));
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** Asks for a short text (a reason, a note) before an action; undefined when cancelled or empty. */
export function askText(
  title: string,
  body: string,
  label: string,
  verb: string,
): Promise<string | undefined> {
  return new Promise((resolve) => {
    const input = h("input", { type: "text", required: true, maxlength: 500, name: "text" });
    const dialog = h("dialog", { class: "confirm", "aria-label": title });
    const close = (value: string | undefined) => {
      dialog.close();
      dialog.remove();
      resolve(value?.trim() || undefined);
    };
    const form = h(
      "form",
      { method: "dialog" },
      h("h2", null, title),
      h("p", null, body),
      field(label, input),
      h(
        "div",
        { class: "row end" },
        h("button", { type: "button", onClick: () => close(undefined) }, "Cancel"),
        h("button", { type: "submit", class: "danger" }, verb),
      ),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      if (input.value.trim()) close(input.value);
    });
    mount(dialog, form);
    dialog.addEventListener("cancel", () => close(undefined));
    document.body.append(dialog);
    dialog.showModal();
    input.focus();
  });
}

/** Saves text as a file (CSV, JSON) through a temporary blob: URL. */
export function download(name: string, type: string, text: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
