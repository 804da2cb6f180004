import type { Random } from "../../src/core/tracing/tardos.js";

/** A seeded xorshift generator, so statistical tests are reproducible. */
export function seeded(seed: number): Random {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x100000000;
  };
}
