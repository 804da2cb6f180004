/**
 * Distribution comparison for output monitoring: the population stability index (effect size)
 * and Pearson's chi-square goodness-of-fit test (significance). Counts are smoothed by half a
 * count per bin (Jeffreys), so an empty bin never makes either infinite.
 */

export interface DriftResult {
  /** Population stability index: < 0.1 stable, 0.1–0.25 moderate, > 0.25 a significant shift. */
  psi: number;
  chi2: number;
  df: number;
  /** P(chi-square with df degrees of freedom >= chi2): small means "not the same distribution". */
  p: number;
  /** Rows observed. */
  n: number;
}

function proportions(counts: readonly number[]): number[] {
  const total = counts.reduce((a, b) => a + b, 0) + 0.5 * counts.length;
  return counts.map((c) => (c + 0.5) / total);
}

/** Compares observed counts with a reference distribution given as counts (same bins). */
export function compareDistributions(observed: readonly number[], reference: readonly number[]): DriftResult {
  if (observed.length !== reference.length || observed.length < 2)
    throw new RangeError("observed and reference need the same number of bins, at least 2");
  const n = observed.reduce((a, b) => a + b, 0);
  const p = proportions(observed);
  const q = proportions(reference);
  let psi = 0;
  let chi2 = 0;
  for (let i = 0; i < q.length; i++) {
    const pi = p[i] as number;
    const qi = q[i] as number;
    psi += (pi - qi) * Math.log(pi / qi);
    const expected = n * qi;
    chi2 += ((observed[i] as number) - expected) ** 2 / expected;
  }
  const df = q.length - 1;
  return { psi, chi2, df, p: chiSquareSurvival(chi2, df), n };
}

/** P(X >= x) for X ~ chi-square(df): the regularized upper incomplete gamma Q(df/2, x/2). */
export function chiSquareSurvival(x: number, df: number): number {
  if (x <= 0) return 1;
  return gammaQ(df / 2, x / 2);
}

// Numerical Recipes §6.2: the series for x < a + 1, the continued fraction (Lentz) otherwise.
function gammaQ(a: number, x: number): number {
  const lnGammaA = lnGamma(a);
  if (x < a + 1) {
    let term = 1 / a;
    let total = term;
    for (let n = 1; n < 500; n++) {
      term *= x / (a + n);
      total += term;
      if (Math.abs(term) < Math.abs(total) * 1e-15) break;
    }
    return Math.max(0, 1 - total * Math.exp(-x + a * Math.log(x) - lnGammaA));
  }
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 500; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return Math.min(1, Math.exp(-x + a * Math.log(x) - lnGammaA) * h);
}

// Lanczos approximation (g = 7, n = 9), accurate to ~15 digits for a > 0.
const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];
function lnGamma(z: number): number {
  if (z < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * z)) - lnGamma(1 - z);
  const x = z - 1;
  let a = LANCZOS[0] as number;
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += (LANCZOS[i] as number) / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}
