import { describe, expect, it } from "vitest";
import {
  drawBiases,
  drawCodeword,
  innocentBound,
  innocentScores,
  type PirateBit,
  score,
  tailFraction,
} from "../../src/core/tracing/tardos.js";
import { seeded } from "../helpers/seeded.js";

const N = 256;
const HOLDERS = 400;
const EPSILON = 1e-3;

function population(seed: number, c: number, n = N) {
  const random = seeded(seed);
  const biases = drawBiases(n, c, random);
  const codewords = Array.from({ length: HOLDERS }, () => drawCodeword(biases, random));
  return { biases, codewords, random };
}

function accused(pirate: PirateBit[], biases: number[], codewords: Uint8Array[]): number[] {
  // The server's rule: accuse when the Chernoff bound on an innocent's score is within ε / holders.
  return codewords.flatMap((w, j) =>
    innocentBound(score(w, pirate, biases), pirate, biases) <= EPSILON / codewords.length ? [j] : [],
  );
}

describe("Tardos fingerprinting code (symmetric score)", () => {
  it("draws biases inside [t, 1 − t] and codewords with those frequencies", () => {
    const { biases, codewords } = population(1, 3);
    for (const p of biases) {
      expect(p).toBeGreaterThanOrEqual(1 / 900 - 1e-12);
      expect(p).toBeLessThanOrEqual(1 - 1 / 900 + 1e-12);
    }
    const ones = codewords.reduce((n, w) => n + (w[0] as number), 0) / HOLDERS;
    expect(Math.abs(ones - (biases[0] as number))).toBeLessThan(0.1);
  });

  it("accuses a single leaker who shared the copy as it was, and nobody else", () => {
    const { biases, codewords } = population(2, 3);
    const leaker = 17;
    const pirate = Array.from(codewords[leaker] as Uint8Array) as PirateBit[];
    expect(accused(pirate, biases, codewords)).toEqual([leaker]);
  });

  it("accuses colluders who average their copies (differing positions unreadable)", () => {
    const { biases, codewords } = population(3, 2);
    const [a, b] = [5, 250];
    const pirate = Array.from({ length: N }, (_, i) =>
      codewords[a]?.[i] === codewords[b]?.[i] ? (codewords[a]?.[i] as 0 | 1) : null,
    );
    const found = accused(pirate, biases, codewords);
    expect(found.length).toBeGreaterThan(0);
    expect(found.every((j) => j === a || j === b)).toBe(true);
  });

  // Three colluders need about twice the positions two do: (π²/2)·c²·ln(holders/ε) ≈ 570 for
  // c = 3, 400 holders, ε = 1e-3 (measured: 256 positions catch one of three in 6 of 20 trials,
  // 512 in 19 of 20).
  it("with 512 positions, accuses at least one of three colluders mixing position by position, and no innocent", () => {
    for (let trial = 0; trial < 5; trial++) {
      const { biases, codewords, random } = population(100 + trial, 3, 512);
      const gang = [10, 20, 30];
      const pirate = Array.from({ length: 512 }, (_, i) => {
        const who = gang[Math.floor(random() * gang.length)] as number;
        return codewords[who]?.[i] as 0 | 1;
      });
      const found = accused(pirate, biases, codewords);
      expect(found.length).toBeGreaterThan(0);
      expect(found.every((j) => gang.includes(j))).toBe(true);
    }
  });

  it("accuses nobody for a copy no holder made: false accusations stay under the bound", () => {
    let falseAccusations = 0;
    const trials = 40;
    for (let trial = 0; trial < trials; trial++) {
      const { biases, codewords, random } = population(1000 + trial, 3);
      // An unlisted holder's copy: drawn from the same biases, but not among the codewords scored.
      const stranger = Array.from(drawCodeword(biases, random)) as PirateBit[];
      falseAccusations += accused(stranger, biases, codewords).length;
    }
    // Bound: ε per trial; over 40 trials the expected count is 0.04.
    expect(falseAccusations).toBe(0);
  });

  it("estimates how likely an innocent scores as high, empirically, never above the bound by more than sampling", () => {
    const { biases, codewords, random } = population(7, 3);
    const pirate = Array.from(codewords[0] as Uint8Array) as PirateBit[];
    const sample = innocentScores(pirate, biases, 2000, random);
    const high = score(codewords[0] as Uint8Array, pirate, biases);
    expect(tailFraction(sample, high)).toBeLessThanOrEqual(1 / 2001 + 1e-12);
    expect(innocentBound(high, pirate, biases)).toBeLessThan(1e-6);
    expect(tailFraction(sample, 0)).toBeGreaterThan(0.3);
    expect(innocentBound(0, pirate, biases)).toBe(1);
  });
});
