/**
 * Tardos probabilistic fingerprinting codes, with Škorić et al.'s symmetric score ("Symmetric
 * Tardos fingerprinting codes for arbitrary alphabet sizes", 2008). Each position i has a
 * secret bias p_i drawn from the arcsine density on [t, 1 − t]; each holder's bit there is 1
 * with probability p_i. A pirate copy's bits are scored against every codeword; colluders'
 * scores grow linearly with the code length, an innocent's stays a zero-mean walk of unit
 * variance per position, which bounds false accusations.
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
 * How likely an innocent holder scores at least `s`: the fraction of `samples` fresh codewords
 * drawn from the same biases that do (at least one in samples + 1, the resolution of the
 * estimate), and a Gaussian tail bound from the score's unit variance per readable position.
 */
export function innocentTail(
  s: number,
  pirate: readonly PirateBit[],
  biases: readonly number[],
  samples: number,
  random: Random,
): { empirical: number; gaussian: number } {
  let above = 0;
  for (let k = 0; k < samples; k++) if (score(drawCodeword(biases, random), pirate, biases) >= s) above++;
  const m = Math.max(1, readable(pirate));
  return { empirical: (above + 1) / (samples + 1), gaussian: gaussianTail(s / Math.sqrt(m)) };
}

/** P(Z ≥ z) for a standard normal, by the complementary error function (Abramowitz–Stegun 7.1.26). */
export function gaussianTail(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erfc =
    t *
    (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) *
    Math.exp(-x * x);
  return z >= 0 ? erfc / 2 : 1 - erfc / 2;
}

/**
 * The accusation threshold for `holders` innocent codewords and a total false-accusation
 * probability `epsilon` (union bound over holders, Gaussian tail per holder): accuse when
 * score ≥ z·√m with P(Z ≥ z) = epsilon / holders.
 */
export function threshold(readablePositions: number, holders: number, epsilon: number): number {
  const target = epsilon / Math.max(1, holders);
  let lo = 0;
  let hi = 40;
  for (let k = 0; k < 100; k++) {
    const mid = (lo + hi) / 2;
    if (gaussianTail(mid) > target) lo = mid;
    else hi = mid;
  }
  return hi * Math.sqrt(Math.max(1, readablePositions));
}
