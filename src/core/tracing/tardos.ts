/**
 * Tardos probabilistic fingerprinting codes, with Škorić et al.'s symmetric score ("Symmetric
 * Tardos fingerprinting codes for arbitrary alphabet sizes", 2008). Each position i has a
 * secret bias p_i drawn from the arcsine density on [t, 1 − t]; each holder's bit there is 1
 * with probability p_i. A pirate copy's bits are scored against every codeword; colluders'
 * scores grow linearly with the code length, an innocent's stays a zero-mean walk of unit
 * variance per position. Accusations use innocentBound, a Chernoff bound that holds at every
 * code length (a normal approximation does not: the terms are far from normal where the biases
 * are extreme).
 *
 * Code length for c colluders and false-accusation probability ε, symmetric score:
 * m ≈ (π²/2)·c²·ln(1/ε) asymptotically (Škorić–Katzenbeisser–Celik). Pure functions: the
 * caller brings the randomness (crypto.getRandomValues on the server, a seeded generator in tests).
 */

/** A uniform number in [0, 1). */
export type Random = () => number;

/** Cut-off of the bias density for `c` colluders (Tardos: t = 1/(300c)). */
export function biasCutoff(c: number): number {
  return 1 / (300 * c);
}

/** `n` secret biases from the arcsine density on [t, 1 − t]: p = sin²(r), r uniform. */
export function drawBiases(n: number, c: number, random: Random): number[] {
  const lo = Math.asin(Math.sqrt(biasCutoff(c)));
  const hi = Math.PI / 2 - lo;
  return Array.from({ length: n }, () => Math.sin(lo + (hi - lo) * random()) ** 2);
}

/** One holder's codeword: bit i is 1 with probability p_i. */
export function drawCodeword(biases: readonly number[], random: Random): Uint8Array {
  return Uint8Array.from(biases, (p) => (random() < p ? 1 : 0));
}

/** A pirate copy's bit per position: 0, 1, or null where it could not be read (erased, mixed). */
export type PirateBit = 0 | 1 | null;

/**
 * The symmetric score of `codeword` against `pirate`: per readable position, +√((1−p)/p) when
 * both are 1, +√(p/(1−p)) when both are 0, and the negative of the other term when they differ.
 * An innocent codeword's score has mean 0 and variance 1 per readable position.
 */
export function score(codeword: Uint8Array, pirate: readonly PirateBit[], biases: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < biases.length; i++) {
    const y = pirate[i];
    if (y === null || y === undefined) continue;
    const p = biases[i] as number;
    const one = Math.sqrt((1 - p) / p);
    const zero = Math.sqrt(p / (1 - p));
    const x = codeword[i];
    if (y === 1) s += x === 1 ? one : -zero;
    else s += x === 0 ? zero : -one;
  }
  return s;
}

/** Positions of `pirate` that were read. */
export function readable(pirate: readonly PirateBit[]): number {
  return pirate.filter((b) => b !== null && b !== undefined).length;
}

/**
 * The scores of `samples` fresh innocent codewords drawn from `biases`, ascending: one sample
 * serves the empirical tail of every score of one trace (tailFraction). Only readable positions
 * are drawn (an erased one adds 0 whatever the bit), each as its score term directly: the same
 * distribution as score(drawCodeword(biases), pirate, biases), without a codeword per sample.
 */
export function innocentScores(
  pirate: readonly PirateBit[],
  biases: readonly number[],
  samples: number,
  random: Random,
): Float64Array {
  const terms = innocentTerms(pirate, biases);
  const scores = new Float64Array(samples);
  for (let k = 0; k < samples; k++) {
    let s = 0;
    for (const t of terms) s += random() < t.q ? t.high : t.low;
    scores[k] = s;
  }
  return scores.sort();
}

/**
 * An innocent's score term at each readable position: `high` (its bit matches the pirate's)
 * with probability q, else `low`. If y = 1: +√((1−p)/p) w.p. p, else −√(p/(1−p)); if y = 0:
 * +√(p/(1−p)) w.p. 1 − p, else −√((1−p)/p). Same formulas and order as score().
 */
function innocentTerms(
  pirate: readonly PirateBit[],
  biases: readonly number[],
): { q: number; high: number; low: number }[] {
  const terms: { q: number; high: number; low: number }[] = [];
  for (let i = 0; i < biases.length; i++) {
    const y = pirate[i];
    if (y === null || y === undefined) continue;
    const p = biases[i] as number;
    const one = Math.sqrt((1 - p) / p);
    const zero = Math.sqrt(p / (1 - p));
    terms.push(y === 1 ? { q: p, high: one, low: -zero } : { q: 1 - p, high: zero, low: -one });
  }
  return terms;
}

/** The fraction of ascending `sorted` scores at least `s`, as (count + 1) / (n + 1): never 0. */
export function tailFraction(sorted: Float64Array, s: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((sorted[mid] as number) < s) lo = mid + 1;
    else hi = mid;
  }
  return (sorted.length - lo + 1) / (sorted.length + 1);
}

/**
 * A rigorous upper bound on the probability that an innocent codeword scores at least `s`
 * against `pirate` (Chernoff: P(S ≥ s) ≤ e^(−λs)·E[e^(λS)] for every λ > 0, minimised over λ).
 *
 * An innocent's bits are independent of the pirate copy, so its score is a sum of independent
 * two-valued terms, one per readable position i with bias p: if y_i = 1, +√((1−p)/p) with
 * probability p and −√(p/(1−p)) otherwise; if y_i = 0, +√(p/(1−p)) with probability 1 − p and
 * −√((1−p)/p) otherwise. Writing a_i for the high value, q_i for its probability and g_i for
 * the gap to the low value, and M = Σ a_i (the highest score there is), the log of the bound is
 *
 *   f(λ) = λ·(M − s) + Σ log(q_i + (1 − q_i)·e^(−λ·g_i)),
 *
 * convex in λ and computed without overflow (every exponent is ≤ 0). f'(0) = −s, so for s > 0
 * the minimum lies at λ > 0 and is found by bisection on f'; any λ gives a valid bound, so an
 * inexact minimum only loosens it. For s ≤ 0 the bound is 1; at s = M it is Π q_i, the
 * probability of the highest score itself (kept for s within rounding above M), beyond it 0.
 *
 * Unlike a normal approximation, this holds at every code length: the scores of the symmetric
 * code are far from normal where the biases are extreme.
 */
export function innocentBound(s: number, pirate: readonly PirateBit[], biases: readonly number[]): number {
  if (!(s > 0)) return 1;
  const terms = innocentTerms(pirate, biases);
  const q = terms.map((t) => t.q);
  const gap = terms.map((t) => t.high - t.low);
  let top = 0;
  let logTop = 0;
  for (const t of terms) {
    top += t.high;
    logTop += Math.log(t.q);
  }
  // No innocent scores above the top (0 beyond rounding); at the top, the chance is exact.
  if (s > top + 1e-9 * (1 + top)) return 0;
  if (s >= top) return Math.exp(logTop);
  const d = top - s;
  const f = (lambda: number) => {
    let sum = lambda * d;
    for (let i = 0; i < q.length; i++) {
      const qi = q[i] as number;
      sum += Math.log(qi + (1 - qi) * Math.exp(-lambda * (gap[i] as number)));
    }
    return sum;
  };
  const slope = (lambda: number) => {
    let sum = d;
    for (let i = 0; i < q.length; i++) {
      const qi = q[i] as number;
      const g = gap[i] as number;
      const low = (1 - qi) * Math.exp(-lambda * g);
      sum -= (g * low) / (qi + low);
    }
    return sum;
  };
  // Bracket the minimum: the slope rises from −s to d > 0 (every exponential underflows to 0
  // long before 2^200), then bisect.
  let lo = 0;
  let hi = 1;
  for (let k = 0; k < 200 && slope(hi) < 0; k++) {
    lo = hi;
    hi *= 2;
  }
  for (let k = 0; k < 100; k++) {
    const mid = (lo + hi) / 2;
    if (slope(mid) < 0) lo = mid;
    else hi = mid;
  }
  return Math.min(1, Math.exp(Math.min(f(lo), f(hi))));
}

/**
 * A pirate copy's bits from per-slot reads (the leaked weights' correlation with variant 1
 * minus variant 0, in [−1, 1] when normalised): 1 at or above `erase`, 0 at or below −`erase`,
 * unread (null) between, e.g. where colluders averaged their variants. A read of exactly 0 is
 * unread even when `erase` is 0.
 */
export function pirateBits(reads: readonly number[], erase: number): PirateBit[] {
  return reads.map((r) => (r >= erase && r > 0 ? 1 : r <= -erase && r < 0 ? 0 : null));
}
