/**
 * Charts drawn as SVG by hand: a bar chart and a paired distribution chart are all the console
 * needs, and SVG attributes (not style attributes) keep them within the CSP.
 */
import { s } from "./dom.js";

const W = 640;
const H = 200;
const PAD = { left: 44, right: 8, top: 10, bottom: 26 };

function ticks(max: number): number[] {
  if (max <= 0) return [0];
  const step = 10 ** Math.floor(Math.log10(max));
  const nice = [1, 2, 5, 10].map((m) => m * step).find((st) => max / st <= 5) ?? step * 10;
  return Array.from({ length: Math.floor(max / nice) + 1 }, (_, i) => i * nice);
}

/** Bars with a y axis; every bar carries its value in a tooltip. */
export function barChart(points: { label: string; value: number }[], title: string): SVGElement {
  const max = Math.max(1, ...points.map((p) => p.value));
  const top = Math.max(max, ...ticks(max));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const bw = plotW / Math.max(points.length, 1);
  const y = (v: number) => PAD.top + plotH - (v / top) * plotH;
  const every = Math.ceil(points.length / 10);
  return s(
    "svg",
    { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": title },
    s("title", null, title),
    ticks(max).map((t) => [
      s("line", { x1: PAD.left, x2: W - PAD.right, y1: y(t), y2: y(t), class: "grid" }),
      s("text", { x: PAD.left - 6, y: y(t) + 4, class: "axis", "text-anchor": "end" }, String(t)),
    ]),
    points.map((p, i) => [
      s(
        "rect",
        {
          x: PAD.left + i * bw + bw * 0.15,
          y: y(p.value),
          width: Math.max(1, bw * 0.7),
          height: Math.max(0, PAD.top + plotH - y(p.value)),
          class: "bar",
        },
        s("title", null, `${p.label}: ${p.value}`),
      ),
      i % every === 0
        ? s(
            "text",
            { x: PAD.left + i * bw + bw / 2, y: H - 8, class: "axis", "text-anchor": "middle" },
            p.label,
          )
        : null,
    ]),
  );
}

/** Observed shares beside the reference's, per bin (the evidence of an output anomaly). */
export function distributionChart(observed: number[], reference: number[], title: string): SVGElement {
  const bins = Math.max(observed.length, reference.length);
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const bw = plotW / Math.max(bins, 1);
  const top = Math.max(0.05, ...observed, ...reference);
  const y = (v: number) => PAD.top + plotH - (v / top) * plotH;
  const bar = (i: number, v: number, cls: string, offset: number, label: string) =>
    s(
      "rect",
      {
        x: PAD.left + i * bw + offset,
        y: y(v),
        width: bw * 0.38,
        height: PAD.top + plotH - y(v),
        class: cls,
      },
      s("title", null, `${label} ${i}: ${(v * 100).toFixed(1)}%`),
    );
  return s(
    "svg",
    { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": title },
    s("title", null, title),
    [0, top / 2, top].map((t) => [
      s("line", { x1: PAD.left, x2: W - PAD.right, y1: y(t), y2: y(t), class: "grid" }),
      s(
        "text",
        { x: PAD.left - 6, y: y(t) + 4, class: "axis", "text-anchor": "end" },
        `${Math.round(t * 100)}%`,
      ),
    ]),
    Array.from({ length: bins }, (_, i) => [
      bar(i, reference[i] ?? 0, "bar reference", bw * 0.1, "reference"),
      bar(i, observed[i] ?? 0, "bar observed", bw * 0.5, "observed"),
      s(
        "text",
        { x: PAD.left + i * bw + bw / 2, y: H - 8, class: "axis", "text-anchor": "middle" },
        String(i),
      ),
    ]),
  );
}
