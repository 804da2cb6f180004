import { describe, expect, it } from "vitest";
import { markVariant, readSlot, slotSigns, weightScale } from "../../src/core/tracing/marks.js";

const secret = new Uint8Array(32).fill(9);

/** Rounds to float16 and back, as a leaked copy re-saved in half precision would be. */
function toHalf(x: Float32Array): Float32Array {
  return Float32Array.from(x, (v) => {
    if (v === 0) return 0;
    const e = Math.floor(Math.log2(Math.abs(v)));
    const step = 2 ** (e - 10);
    return Math.round(v / step) * step;
  });
}

function gaussian(seed: number): () => number {
  let s = seed;
  const u = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return (s + 1) / 2147483649;
  };
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

describe("spread-spectrum slot marks", () => {
  it("derives the same secret signs for the same slot, different ones for another slot", async () => {
    const a = await slotSigns(secret, 3, 1000);
    expect(Array.from(await slotSigns(secret, 3, 1000))).toEqual(Array.from(a));
    const b = await slotSigns(secret, 4, 1000);
    const agree = a.reduce((n, v, i) => n + (v === b[i] ? 1 : 0), 0);
    expect(agree).toBeGreaterThan(400);
    expect(agree).toBeLessThan(600);
    expect(a.every((v) => v === 1 || v === -1)).toBe(true);
  });

  it("reads each variant back, also after float16 re-saving and added noise; an average reads as neither", async () => {
    const noise = gaussian(5);
    const original = Float32Array.from({ length: 256 }, () => noise() * 0.05);
    const delta = 0.01 * weightScale(original);
    const signs = await slotSigns(secret, 0, 256);
    const v0 = markVariant(original, signs, delta, 0);
    const v1 = markVariant(original, signs, delta, 1);
    expect(readSlot(v1, v0, v1)).toBeCloseTo(1, 5);
    expect(readSlot(v0, v0, v1)).toBeCloseTo(-1, 5);
    expect(readSlot(toHalf(v1), v0, v1)).toBeGreaterThan(0.5);
    expect(readSlot(toHalf(v0), v0, v1)).toBeLessThan(-0.5);
    const noisy = Float32Array.from(v1, (w) => w + noise() * delta * 2);
    expect(readSlot(noisy, v0, v1)).toBeGreaterThan(0.5);
    const averaged = Float32Array.from(v0, (w, i) => (w + (v1[i] as number)) / 2);
    expect(Math.abs(readSlot(averaged, v0, v1))).toBeLessThan(0.05);
    expect(Math.abs(readSlot(original, v0, v1))).toBeLessThan(0.05);
  });
});
