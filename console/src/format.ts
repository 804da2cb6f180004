/** Display helpers: times are seconds since the epoch (the API's unit). */
export const when = (t: number | null | undefined): string =>
  t === null || t === undefined ? "—" : new Date(t * 1000).toISOString().replace("T", " ").slice(0, 19);

export const day = (t: number): string => new Date(t * 1000).toISOString().slice(5, 10);

export const num = (n: number | null | undefined): string =>
  n === null || n === undefined ? "—" : n.toLocaleString("en");

export const bytes = (n: number | null | undefined): string => {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(u === 0 ? 0 : 1)} ${units[u]}`;
};

/** A long id shortened for tables; the full value stays in the title. */
export const short = (id: string, n = 12): string => (id.length > n + 1 ? `${id.slice(0, n)}…` : id);
