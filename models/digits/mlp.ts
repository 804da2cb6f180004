/**
 * A two-layer perceptron (784 → hidden → 10) trained with Adam on softmax cross-entropy.
 * Plain Float32Arrays, no framework: small enough to read, fast enough to train in a minute.
 */
import { seededRandom } from "./dataset.js";

export interface MlpWeights {
  hidden: number;
  w1: Float32Array; // [784, hidden]
  b1: Float32Array;
  w2: Float32Array; // [hidden, 10]
  b2: Float32Array;
}

const IN = 784;
const OUT = 10;

export function initMlp(hidden: number, seed: number): MlpWeights {
  const random = seededRandom(seed);
  const gaussian = () => Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random());
  const he = (fanIn: number, n: number) =>
    Float32Array.from({ length: n }, () => gaussian() * Math.sqrt(2 / fanIn));
  return {
    hidden,
    w1: he(IN, IN * hidden),
    b1: new Float32Array(hidden),
    w2: he(hidden, hidden * OUT),
    b2: new Float32Array(OUT),
  };
}

/** Forward pass for one sample; fills `h` (post-ReLU) and returns softmax probabilities. */
export function forward(m: MlpWeights, x: Float32Array, h: Float32Array): Float32Array {
  h.set(m.b1);
  for (let i = 0; i < IN; i++) {
    const xi = x[i] as number;
    if (xi === 0) continue;
    const row = i * m.hidden;
    for (let j = 0; j < m.hidden; j++) h[j] = (h[j] as number) + xi * (m.w1[row + j] as number);
  }
  for (let j = 0; j < m.hidden; j++) if ((h[j] as number) < 0) h[j] = 0;
  const logits = Float32Array.from(m.b2);
  for (let j = 0; j < m.hidden; j++) {
    const hj = h[j] as number;
    if (hj === 0) continue;
    for (let k = 0; k < OUT; k++) logits[k] = (logits[k] as number) + hj * (m.w2[j * OUT + k] as number);
  }
  const max = Math.max(...logits);
  let sum = 0;
  for (let k = 0; k < OUT; k++) {
    logits[k] = Math.exp((logits[k] as number) - max);
    sum += logits[k] as number;
  }
  for (let k = 0; k < OUT; k++) logits[k] = (logits[k] as number) / sum;
  return logits;
}

export interface TrainOptions {
  epochs: number;
  batch: number;
  learningRate: number;
  seed: number;
  augment: (x: Float32Array, random: () => number) => Float32Array;
  onEpoch?: (epoch: number, loss: number) => void;
}

/** Minibatch Adam (Kingma & Ba 2015) with the usual β1=0.9, β2=0.999. */
export function train(m: MlpWeights, data: { pixels: Float32Array; label: number }[], o: TrainOptions): void {
  const random = seededRandom(o.seed);
  const params = [m.w1, m.b1, m.w2, m.b2];
  const grads = params.map((p) => new Float32Array(p.length));
  const mom = params.map((p) => new Float32Array(p.length));
  const vel = params.map((p) => new Float32Array(p.length));
  const [gw1, gb1, gw2, gb2] = grads as [Float32Array, Float32Array, Float32Array, Float32Array];
  const h = new Float32Array(m.hidden);
  const dh = new Float32Array(m.hidden);
  const order = data.map((_, i) => i);
  let step = 0;
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j] as number, order[i] as number];
    }
    let loss = 0;
    for (let start = 0; start < order.length; start += o.batch) {
      for (const g of grads) g.fill(0);
      const end = Math.min(order.length, start + o.batch);
      for (let n = start; n < end; n++) {
        const sample = data[order[n] as number] as { pixels: Float32Array; label: number };
        const x = o.augment(sample.pixels, random);
        const p = forward(m, x, h);
        loss -= Math.log((p[sample.label] as number) + 1e-12);
        p[sample.label] = (p[sample.label] as number) - 1; // dL/dlogits
        dh.fill(0);
        for (let j = 0; j < m.hidden; j++) {
          const hj = h[j] as number;
          for (let k = 0; k < OUT; k++) {
            const d = p[k] as number;
            gw2[j * OUT + k] = (gw2[j * OUT + k] as number) + hj * d;
            dh[j] = (dh[j] as number) + d * (m.w2[j * OUT + k] as number);
          }
          if (hj === 0) dh[j] = 0;
        }
        for (let k = 0; k < OUT; k++) gb2[k] = (gb2[k] as number) + (p[k] as number);
        for (let j = 0; j < m.hidden; j++) gb1[j] = (gb1[j] as number) + (dh[j] as number);
        for (let i = 0; i < IN; i++) {
          const xi = x[i] as number;
          if (xi === 0) continue;
          const row = i * m.hidden;
          for (let j = 0; j < m.hidden; j++) gw1[row + j] = (gw1[row + j] as number) + xi * (dh[j] as number);
        }
      }
      step++;
      const scale = 1 / (end - start);
      const c1 = 1 - 0.9 ** step;
      const c2 = 1 - 0.999 ** step;
      params.forEach((param, pi) => {
        const g = grads[pi] as Float32Array;
        const mo = mom[pi] as Float32Array;
        const ve = vel[pi] as Float32Array;
        for (let i = 0; i < param.length; i++) {
          const gi = (g[i] as number) * scale;
          mo[i] = 0.9 * (mo[i] as number) + 0.1 * gi;
          ve[i] = 0.999 * (ve[i] as number) + 0.001 * gi * gi;
          param[i] =
            (param[i] as number) -
            (o.learningRate * ((mo[i] as number) / c1)) / (Math.sqrt((ve[i] as number) / c2) + 1e-8);
        }
      });
    }
    o.onEpoch?.(epoch, loss / order.length);
  }
}
