import type { Random } from "../../core/tracing/tardos.js";

/**
 * A Random (uniform in [0, 1), 53 bits) from crypto.getRandomValues, read in blocks: biases and
 * codewords are secrets, so they never come from Math.random. Each call makes a new generator;
 * nothing is shared between requests.
 */
export function cryptoRandom(): Random {
  const block = new Uint32Array(2048);
  let next = block.length;
  return () => {
    if (next === block.length) {
      crypto.getRandomValues(block);
      next = 0;
    }
    const high = (block[next++] as number) >>> 5;
    const low = (block[next++] as number) >>> 6;
    return (high * 67108864 + low) / 9007199254740992;
  };
}
