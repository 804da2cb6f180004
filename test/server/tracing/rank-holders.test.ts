import { describe, expect, it } from "vitest";
import { drawBiases, drawCodeword, innocentBound, type PirateBit } from "../../../src/core/tracing/tardos.js";
import { RANKED, rankHolders } from "../../../src/server/tracing/rank-holders.js";
import { seeded } from "../../helpers/seeded.js";

describe("rankHolders", () => {
  const random = seeded(11);
  const biases = drawBiases(512, 3, random);
  const holders = Array.from({ length: 60 }, (_, id) => ({ id, codeword: drawCodeword(biases, random) }));
  /** Colluders 3, 7 and 9 mix their copies slot by slot. */
  const pirate = biases.map(
    (_, i) => holders[[3, 7, 9][i % 3] as number]?.codeword[i] as 0 | 1,
  ) as PirateBit[];

  it("returns the top scores and every accused holder, highest first, with bounds that never fall as scores rise", () => {
    const ranked = rankHolders(holders, pirate, biases, 1e-3 / holders.length);
    expect(ranked.length).toBeGreaterThanOrEqual(RANKED);
    for (let i = 1; i < ranked.length; i++) {
      expect(ranked[i]?.score).toBeLessThanOrEqual(ranked[i - 1]?.score as number);
      expect(ranked[i]?.bound).toBeGreaterThanOrEqual(ranked[i - 1]?.bound as number);
    }
    const accused = ranked.filter((r) => r.accused).map((r) => r.holder.id);
    expect(accused.length).toBeGreaterThan(0);
    expect(accused.every((id) => [3, 7, 9].includes(id))).toBe(true);
    // Accused iff the bound is within the per-holder budget, each bound at least the holder's own.
    for (const r of ranked) {
      expect(r.accused).toBe(r.bound <= 1e-3 / holders.length);
      expect(r.bound).toBeGreaterThanOrEqual(innocentBound(r.score, pirate, biases));
    }
    // Nobody left out would have been accused.
    const listed = new Set(ranked.map((r) => r.holder.id));
    const worst = Math.min(...ranked.map((r) => r.score));
    for (const h of holders)
      if (!listed.has(h.id)) {
        const { score } = rankHolders([h], pirate, biases, 1)[0] as { score: number };
        expect(score).toBeLessThanOrEqual(worst);
        expect(innocentBound(score, pirate, biases)).toBeGreaterThan(1e-3 / holders.length);
      }
  });

  it("lists every holder when there are fewer than the top, and accuses nobody for an unrelated copy", () => {
    const stranger = Array.from(drawCodeword(biases, random)) as PirateBit[];
    const few = rankHolders(holders.slice(0, 3), stranger, biases, 1e-3 / 3);
    expect(few).toHaveLength(3);
    const all = rankHolders(holders, stranger, biases, 1e-3 / holders.length);
    expect(all).toHaveLength(RANKED);
    expect(all.some((r) => r.accused)).toBe(false);
  });
});
