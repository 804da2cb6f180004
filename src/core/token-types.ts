/**
 * The `typ` of every token kind. Each verifier accepts only its own (RFC 8725 §3.11), so a
 * token of one kind can never be replayed as another even when one key signed both.
 */
export const TYP = {
  manifest: "modelvault-manifest+jws",
  license: "license+jwt",
  dpop: "dpop+jwt",
  usage: "modelvault-usage+jwt",
  checkpoint: "modelvault-checkpoint+jwt",
} as const;

/** Compares a `typ` value the way RFC 7515 §4.1.9 allows: optional "application/", case-insensitive. */
export function typMatches(typ: unknown, expected: string): boolean {
  if (typeof typ !== "string") return false;
  const t = typ.toLowerCase();
  return t === expected || t === `application/${expected}`;
}
