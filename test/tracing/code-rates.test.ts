/**
 * The code layer measured alone (docs/TRACING.md, "Parameters and their costs"): how often the
 * server's accusation rule (rankHolders, ε = 10⁻³ over every holder) catches a leaker or a
 * coalition, and how often it accuses an innocent, over many seeded trials. The end-to-end
 * leaks in trace-leak.test.ts show real weights read into these bits; this shows the rates.
 */
import { describe, expect, it } from "vitest";
import { seededRandom } from "../../models/digits/dataset.js";
import { drawBiases, drawCodeword, type PirateBit } from "../../src/core/tracing/tardos.js";
import { rankHolders } from "../../src/server/tracing/rank-holders.js";

const EPSILON = 1e-3;
const HOLDERS = 50;

type Attack = (coalition: Uint8Array[], random: () => number) => PirateBit[];

const attacks: Record<string, { size: number; attack: Attack }> = {
  "one leaker, verbatim": { size: 1, attack: ([x]) => Array.from(x as Uint8Array, (b) => b as PirateBit) },
  "one leaker, 20% unreadable, 1% misread": {
    size: 1,
    attack: ([x], r) =>
      Array.from(x as Uint8Array, (b) => {
        const u = r();
        return u < 0.2 ? null : u < 0.21 ? ((1 - b) as PirateBit) : (b as PirateBit);
      }),
  },
  "two averaging": {
    size: 2,
    attack: ([a, b]) =>
      Array.from(a as Uint8Array, (x, i) => (x === (b as Uint8Array)[i] ? (x as PirateBit) : null)),
  },
  "three mixing slot by slot": {
    size: 3,
    attack: (c, r) =>
      Array.from(c[0] as Uint8Array, (_, i) => (c[Math.floor(r() * c.length)] as Uint8Array)[i] as PirateBit),
  },
  "three, majority vote": {
    size: 3,
    attack: (c) =>
      Array.from(c[0] as Uint8Array, (_, i) =>
        c.reduce((n, x) => n + (x[i] as number), 0) * 2 > c.length ? 1 : 0,
      ),
  },
  "five mixing (beyond c = 3)": {
    size: 5,
    attack: (c, r) =>
      Array.from(c[0] as Uint8Array, (_, i) => (c[Math.floor(r() * c.length)] as Uint8Array)[i] as PirateBit),
  },
};

function measure(slots: number, size: number, attack: Attack, trials: number, seed: number) {
  const random = seededRandom(seed);
  let caught = 0;
  let innocents = 0;
  let accusedColluders = 0;
  for (let t = 0; t < trials; t++) {
    const biases = drawBiases(slots, 3, random);
    const holders = Array.from({ length: HOLDERS }, (_, id) => ({
      id,
      codeword: drawCodeword(biases, random),
    }));
    const coalition = holders.slice(0, size).map((h) => h.codeword);
    // An innocent trial's "leak" is a copy of a device that holds no codeword on this server.
    const pirate =
      size === 0
        ? Array.from(drawCodeword(biases, random), (b) => b as PirateBit)
        : attack(coalition, random);
    const accused = rankHolders(holders, pirate, biases, EPSILON / HOLDERS).filter((h) => h.accused);
    const guilty = accused.filter((a) => a.holder.id < size).length;
    if (guilty > 0) caught++;
    accusedColluders += guilty;
    if (accused.length > guilty) innocents++;
  }
  return {
    caught: caught / trials,
    perColluder: accusedColluders / (trials * Math.max(1, size)),
    innocents,
    trials,
  };
}

describe(`the accusation rule over ${HOLDERS} holders, epsilon ${EPSILON}`, () => {
  it("never accuses anyone for the copy of a device it never issued a codeword to", () => {
    const r = measure(256, 0, () => [], 2000, 1);
    console.log(
      `innocent copies, 256 slots: ${r.innocents} false accusations in ${r.trials} traces (bound ${EPSILON})`,
    );
    expect(r.innocents / r.trials).toBeLessThanOrEqual(EPSILON);
  }, 60_000);

  for (const slots of [128, 256, 512]) {
    it(`catches leakers and coalitions with ${slots} slots`, () => {
      const rows: string[] = [];
      let innocents = 0;
      for (const [name, { size, attack }] of Object.entries(attacks)) {
        const r = measure(slots, size, attack, 150, slots + size);
        innocents += r.innocents;
        rows.push(
          `${name.padEnd(40)} caught ${(100 * r.caught).toFixed(1).padStart(5)}%  colluders accused ${(100 * r.perColluder).toFixed(1).padStart(5)}%  innocents accused ${r.innocents}/${r.trials}`,
        );
        if (size === 1) expect(r.caught).toBe(1);
      }
      console.log(`${slots} slots, ${HOLDERS} holders:\n${rows.join("\n")}`);
      expect(innocents).toBe(0);
    }, 120_000);
  }
});
