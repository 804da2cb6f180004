/**
 * Antipodal spread-spectrum marks in weight tensors. A slot is a run of weights; its two
 * variants are w − δ·s and w + δ·s for a secret ±1 sign vector s, so each weight moves by a
 * small amount and the two variants differ by 2δ per weight. Reading a leaked copy correlates
 * its weights with the difference of the variants: about +1 for variant 1, −1 for variant 0,
 * and about 0 for an average of both (collusion) or for weights that were never marked.
 * The correlation over m weights grows like √m against independent noise (float16 rounding,
 * added Gaussian noise), which is what makes small per-weight changes readable.
 */

/** ±1 signs for `slot`, expanded from a 32-byte secret with HMAC-SHA-256 (counter mode). */
export async function slotSigns(secret: Uint8Array, slot: number, length: number): Promise<Int8Array> {
  const key = await crypto.subtle.importKey(
    "raw",
    secret as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const out = new Int8Array(length);
  const label = new TextEncoder().encode("modelvault-trace-signs-v1");
  for (let block = 0; block * 256 < length; block++) {
    const info = new Uint8Array(label.length + 8);
    info.set(label);
    new DataView(info.buffer).setUint32(label.length, slot);
    new DataView(info.buffer).setUint32(label.length + 4, block);
    const bits = new Uint8Array(await crypto.subtle.sign("HMAC", key, info));
    for (let k = 0; k < 256 && block * 256 + k < length; k++)
      out[block * 256 + k] = ((bits[k >> 3] as number) >> (k & 7)) & 1 ? 1 : -1;
  }
  return out;
}

/** Variant `bit` of a slot: every weight moved by ±δ along the signs. */
export function markVariant(
  original: Float32Array,
  signs: Int8Array,
  delta: number,
  bit: 0 | 1,
): Float32Array {
  const direction = bit === 1 ? delta : -delta;
  return Float32Array.from(original, (w, i) => w + direction * (signs[i] as number));
}

/**
 * The standard deviation of a tensor's weights: marks are sized relative to it, so a slot in a
 * layer of large weights and one in a layer of small weights disturb them alike.
 */
export function weightScale(weights: Float32Array): number {
  let sum = 0;
  let squares = 0;
  for (const w of weights) {
    sum += w;
    squares += w * w;
  }
  const mean = sum / weights.length;
  return Math.sqrt(Math.max(0, squares / weights.length - mean * mean));
}

/**
 * Which variant a leaked slot carries: the projection of (leaked − midpoint) on (v1 − v0),
 * normalised so variant 1 reads +1 and variant 0 reads −1.
 */
export function readSlot(leaked: ArrayLike<number>, v0: Float32Array, v1: Float32Array): number {
  let dot = 0;
  let norm = 0;
  for (let i = 0; i < v0.length; i++) {
    const a = v0[i] as number;
    const b = v1[i] as number;
    const d = b - a;
    dot += ((leaked[i] as number) - (a + b) / 2) * d;
    norm += d * d;
  }
  return norm === 0 ? 0 : (2 * dot) / norm;
}
