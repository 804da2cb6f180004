import { type Child, h, mount } from "./dom.js";

export interface Page<T, C> {
  rows: T[];
  /** The cursor of the next page; undefined on the last. */
  next: C | undefined;
}

/**
 * Every list paginates: renders one page into `root` with Previous/Next, keeping the cursors
 * seen so far (offsets or keyset positions, whichever the endpoint takes).
 */
export async function paged<T, C>(
  root: HTMLElement,
  first: C,
  load: (cursor: C) => Promise<Page<T, C>>,
  render: (rows: T[]) => Child,
): Promise<void> {
  const cursors: C[] = [first];
  const show = async (index: number) => {
    const cursor = cursors[index] as C;
    const page = await load(cursor);
    if (page.next !== undefined) cursors[index + 1] = page.next;
    mount(
      root,
      render(page.rows),
      h(
        "nav",
        { class: "pager", "aria-label": "pages" },
        h(
          "button",
          { type: "button", disabled: index === 0, onClick: () => void show(index - 1) },
          "← Previous",
        ),
        h("span", { class: "muted" }, `page ${index + 1}`),
        h(
          "button",
          { type: "button", disabled: page.next === undefined, onClick: () => void show(index + 1) },
          "Next →",
        ),
      ),
    );
  };
  await show(0);
}

/** Offset pagination over `limit` rows: a full page means there may be more. */
export const byOffset =
  <T>(limit: number, fetchRows: (after: number, limit: number) => Promise<T[]>) =>
  async (after: number): Promise<Page<T, number>> => {
    const rows = await fetchRows(after, limit);
    return { rows, next: rows.length === limit ? after + limit : undefined };
  };
