import { innocentBound, type PirateBit, score } from "../../core/tracing/tardos.js";

/** How many of the highest scores a trace reports, accused or not. */
export const RANKED = 5;

export interface Scored<H> {
  holder: H;
  score: number;
  /** Upper bound on the probability that an innocent scores this high (innocentBound). */
  bound: number;
  accused: boolean;
}

/**
 * Scores every holder's codeword against the pirate copy and returns, highest score first, the
 * top RANKED and every accused holder. A holder is accused iff the bound on an innocent scoring
 * as high is at most `perHolder` (ε / holders: with a union bound over the holders, the chance
 * that any innocent is accused is at most ε).
 *
 * Bounds are computed in descending score order and each is raised to the one before it (an
 * upper bound raised is still an upper bound, so this only loosens them); they are then monotone, and the first holder past the top RANKED that is not accused ends the
 * list: every lower score would not be either. So only a few bounds are computed however many
 * devices hold codewords.
 */
export function rankHolders<H extends { codeword: Uint8Array }>(
  holders: readonly H[],
  pirate: readonly PirateBit[],
  biases: readonly number[],
  perHolder: number,
): Scored<H>[] {
  const scored = holders
    .map((holder) => ({ holder, score: score(holder.codeword, pirate, biases) }))
    .sort((a, b) => b.score - a.score);
  const out: Scored<H>[] = [];
  let previous = 0;
  for (const [i, h] of scored.entries()) {
    const bound = Math.max(previous, innocentBound(h.score, pirate, biases));
    previous = bound;
    const accused = bound <= perHolder;
    if (i >= RANKED && !accused) break;
    out.push({ ...h, bound, accused });
  }
  return out;
}
