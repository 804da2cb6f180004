import { describe, expect, it } from "vitest";
import {
  drawBiases,
  drawCodeword,
  innocentBound,
  innocentScores,
  type PirateBit,
  pirateBits,
  type Random,
  score,
  tailFraction,
} from "../../src/core/tracing/tardos.js";
import { seeded } from "../helpers/seeded.js";

/** A pirate copy: a codeword from the biases, with every `erasedEvery`-th position unread. */
function setting(seed: number, n: number, erasedEvery = 0) {
  const random = seeded(seed);
  const biases = drawBiases(n, 3, random);
  const pirate = Array.from(drawCodeword(biases, random), (b, i) =>
    erasedEvery && i % erasedEvery === 0 ? null : b,
  ) as PirateBit[];
  return { random, biases, pirate };
}

/** Innocent scores the long way: a whole codeword per sample, scored by score() (ascending). */
function monteCarlo(pirate: PirateBit[], biases: number[], samples: number, random: Random): Float64Array {
  return Float64Array.from({ length: samples }, () =>
    score(drawCodeword(biases, random), pirate, biases),
  ).sort();
}

/** The log of the Chernoff bound at one λ, straight from its definition (no rearrangement). */
function logChernoff(lambda: number, s: number, pirate: PirateBit[], biases: number[]): number {
  let sum = -lambda * s;
  for (const [i, y] of pirate.entries()) {
    if (y === null) continue;
    const p = biases[i] as number;
    const one = Math.sqrt((1 - p) / p);
    const zero = Math.sqrt(p / (1 - p));
    sum +=
      y === 1
        ? Math.log(p * Math.exp(lambda * one) + (1 - p) * Math.exp(-lambda * zero))
        : Math.log((1 - p) * Math.exp(lambda * zero) + p * Math.exp(-lambda * one));
  }
  return sum;
}

describe("innocentBound: a rigorous bound on an innocent's score tail", () => {
  it("is never below the Monte Carlo tail of innocent scores (64 and 256 positions, with erasures)", () => {
    for (const [seed, n, erased] of [
      [1, 64, 0],
      [2, 64, 4],
      [3, 256, 0],
      [4, 256, 3],
    ] as const) {
      const { random, biases, pirate } = setting(seed, n, erased);
      const samples = 50_000;
      const sorted = monteCarlo(pirate, biases, samples, random);
      const violations: string[] = [];
      // Quantiles from the median to the far tail, and beyond the largest score sampled.
      for (const q of [0.5, 0.9, 0.99, 0.999, 0.9999]) {
        const s = sorted[Math.floor(q * samples)] as number;
        const tail = tailFraction(sorted, s);
        const noise = 4 * Math.sqrt((tail * (1 - tail)) / samples) + 2 / samples;
        const bound = innocentBound(s, pirate, biases);
        if (bound < tail - noise) violations.push(`n=${n} q=${q}: bound ${bound} < tail ${tail}`);
        // Not vacuous: within two orders of magnitude of the tail where the tail is measurable.
        if (q >= 0.99 && q <= 0.999 && bound > 100 * tail)
          violations.push(`n=${n} q=${q}: bound ${bound} loose against tail ${tail}`);
      }
      expect(violations).toEqual([]);
    }
  });

  it("is never below the exact tail, enumerated over all 2^12 innocent codewords", () => {
    const { biases, pirate } = setting(5, 12);
    const outcomes: { s: number; p: number }[] = [];
    for (let mask = 0; mask < 1 << 12; mask++) {
      const w = Uint8Array.from({ length: 12 }, (_, i) => (mask >> i) & 1);
      const p = biases.reduce((acc, b, i) => acc * (w[i] ? b : 1 - b), 1);
      outcomes.push({ s: score(w, pirate, biases), p });
    }
    for (const { s } of outcomes) {
      const exact = outcomes.filter((o) => o.s >= s - 1e-12).reduce((acc, o) => acc + o.p, 0);
      expect(innocentBound(s, pirate, biases)).toBeGreaterThanOrEqual(exact * (1 - 1e-9));
    }
    // The highest score: the bound is its exact probability, Π of each position's match chance.
    const own = Uint8Array.from(pirate as number[]);
    const match = biases.reduce((acc, b, i) => acc * (pirate[i] === 1 ? b : 1 - b), 1);
    expect(innocentBound(score(own, pirate, biases), pirate, biases)).toBeCloseTo(match, 12);
  });

  it("is the minimum over λ of the Chernoff bound (no λ on a grid does better)", () => {
    const { biases, pirate } = setting(6, 128, 5);
    for (const s of [2, 10, 25, 50, 80]) {
      const bound = Math.log(innocentBound(s, pirate, biases));
      let best = 0;
      for (let lambda = 1e-4; lambda < 50; lambda *= 1.02)
        best = Math.min(best, logChernoff(lambda, s, pirate, biases));
      expect(bound).toBeLessThanOrEqual(best + 1e-9);
      expect(bound).toBeGreaterThan(best - 1e-2);
    }
  });

  it("is 1 for scores at or below the mean, falls with the score, and is 0 past the highest score", () => {
    const { biases, pirate } = setting(7, 256);
    expect(innocentBound(0, pirate, biases)).toBe(1);
    expect(innocentBound(-30, pirate, biases)).toBe(1);
    let previous = 1;
    for (let s = 1; s < 300; s += 7) {
      const b = innocentBound(s, pirate, biases);
      expect(b).toBeLessThanOrEqual(previous);
      previous = b;
    }
    // No innocent scores beyond the highest possible score.
    expect(innocentBound(1e9, pirate, biases)).toBe(0);
    // Nothing readable: an innocent's score is 0, never positive.
    expect(
      innocentBound(
        1,
        pirate.map(() => null),
        biases,
      ),
    ).toBe(0);
  });
});

describe("innocentScores, pirateBits and tailFraction", () => {
  it("samples innocent scores from the same distribution as scoring fresh codewords", () => {
    const { random, biases, pirate } = setting(8, 128, 3);
    const fast = innocentScores(pirate, biases, 40_000, random);
    const slow = monteCarlo(pirate, biases, 40_000, random);
    for (const q of [0.01, 0.1, 0.5, 0.9, 0.99]) {
      const i = Math.floor(q * 40_000);
      expect(Math.abs((fast[i] as number) - (slow[i] as number)), `quantile ${q}`).toBeLessThan(0.5);
    }
    const mean = fast.reduce((a, b) => a + b, 0) / fast.length;
    expect(Math.abs(mean)).toBeLessThan(0.15);
  });

  it("reads 1 at or above erase, 0 at or below −erase, and erases between (and exact zeros)", () => {
    expect(pirateBits([1, 0.5, 0.49, 0, -0.49, -0.5, -1], 0.5)).toEqual([1, 1, null, null, null, 0, 0]);
    expect(pirateBits([0.01, 0, -0.01], 0)).toEqual([1, null, 0]);
  });

  it("counts scores at least s, never returning 0", () => {
    const sorted = Float64Array.from([1, 2, 2, 3]);
    expect(tailFraction(sorted, 2)).toBe(4 / 5);
    expect(tailFraction(sorted, 3.5)).toBe(1 / 5);
    expect(tailFraction(sorted, -1)).toBe(5 / 5);
  });
});
