/**
 * Traceable licenses end to end (docs/TRACING.md): a real packer marks digits, a real server
 * assigns codewords and issues licenses, licensees decrypt their copies the way the worker
 * does, the copies leak through the transformations a leaker would try, and `modelvault trace`
 * names the source (or accuses no one).
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as ort from "onnxruntime-web";
import { beforeAll, describe, expect, it } from "vitest";
import { loadDigits, seededRandom } from "../../models/digits/dataset.js";
import { main } from "../../src/cli/main.js";
import type { Manifest } from "../../src/core/manifest.js";
import { DIGITS, grant, type Harness, registerDigits, startHarness, TestDevice } from "../server/harness.js";
import { decryptWithLicense, gaussian, manifestOf, reserialize, tensorsOf } from "./leak-tools.js";

const SLOTS = Number(process.env.MODELVAULT_TRACE_SLOTS ?? 512);

// biome-ignore lint/suspicious/noExplicitAny: the trace report is JSON
type Report = any;

interface Holder {
  name: string;
  device: TestDevice;
  principal: string;
  bytes: Uint8Array;
  bits: string;
}

let h: Harness;
let dir: string;
let manifest: Manifest;
let keyFile: string;
let publisherToken: string;
let auditorToken: string;
let original: Uint8Array;
const holders: Record<string, Holder> = {};
const { heldOut } = loadDigits();
ort.env.wasm.numThreads = 1;

async function accuracy(model: Uint8Array): Promise<{ accuracy: number; probs: Float32Array }> {
  const session = await ort.InferenceSession.create(model);
  const batch = new Float32Array(heldOut.length * 784);
  for (const [i, d] of heldOut.entries()) batch.set(d.pixels, i * 784);
  const out = await session.run({ pixels: new ort.Tensor("float32", batch, [heldOut.length, 784]) });
  const probs = out.probabilities?.data as Float32Array;
  let correct = 0;
  for (const [i, d] of heldOut.entries()) {
    const row = Array.from(probs.subarray(i * 10, i * 10 + 10));
    if (row.indexOf(Math.max(...row)) === d.label) correct++;
  }
  await session.release();
  return { accuracy: (100 * correct) / heldOut.length, probs };
}

async function trace(bytes: Uint8Array, label: string): Promise<Report> {
  const file = join(h.dir, `leak-${label}.onnx`);
  await writeFile(file, bytes);
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(["trace", file, "--package", dir, "--trace-key", keyFile, "--json"], {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    env: { MODELVAULT_SERVER: h.url, MODELVAULT_API_KEY: publisherToken },
  });
  if (code !== 0) throw new Error(`trace exited ${code}: ${err.join("\n")}`);
  const report = JSON.parse(out.slice(out.findIndex((l) => l.startsWith("{"))).join("\n"));
  const accused = report.accused.map((a: { device: string }) => nameOf(a.device));
  console.log(
    `trace ${label}: ${report.readable}/${report.slots} slots read, verdict ${report.verdict}, accused [${accused}]`,
    report.accused.map(
      (r: { device: string; score: number; bound: number }) =>
        `${nameOf(r.device)} ${r.score.toFixed(1)} (${r.bound.toExponential(1)})`,
    ),
  );
  return { ...report, names: accused };
}

const nameOf = (jkt: string) => Object.values(holders).find((x) => x.device.jkt === jkt)?.name ?? jkt;

/** The slot regions of `from` copied over `into`, per slot from the colluder `pick` chooses. */
function mixSlots(into: Uint8Array, sources: Uint8Array[], pick: (slot: number) => number): Uint8Array {
  const out = into.slice();
  for (const [i, s] of (manifest.trace?.slots ?? []).entries())
    out.set((sources[pick(i)] as Uint8Array).subarray(s.offset, s.offset + s.size), s.offset);
  return out;
}

beforeAll(async () => {
  h = await startHarness();
  const publisher = await h.principal("publisher", ["publisher"]);
  const licensor = await h.principal("licensor", ["licensor"]);
  auditorToken = (await h.principal("auditor", ["auditor"])).token;
  publisherToken = publisher.token;
  keyFile = join(h.dir, "trace-key.json");
  const pkg = await registerDigits(h, publisher, 1, { trace: { slots: SLOTS, keyOut: keyFile } });
  dir = pkg.dir;
  manifest = manifestOf(pkg.manifest);
  original = new Uint8Array(await readFile(DIGITS));
  const people = { alice: ["a1", "a2"], bob: ["b1"], carol: ["c1", "c2"], dave: ["d1"] };
  for (const [person, devices] of Object.entries(people)) {
    const p = await h.principal(person, ["client"]);
    await grant(h, licensor.token, p.id);
    for (const name of devices) {
      const device = await TestDevice.create();
      const { bytes, claims } = await decryptWithLicense(h, device, p.token, dir, pkg.manifest, pkg.digest);
      holders[name] = { name, device, principal: p.id, bytes, bits: claims.trc?.bits ?? "" };
    }
  }
}, 240_000);

describe(`traceable licenses (${SLOTS} slots on digits)`, () => {
  it("gives every device its own copy: identical to the original outside the slots, different inside", () => {
    const slots = manifest.trace?.slots ?? [];
    expect(slots).toHaveLength(SLOTS);
    const inSlot = new Uint8Array(original.length);
    for (const s of slots) inSlot.fill(1, s.offset, s.offset + s.size);
    const copies = Object.values(holders);
    for (const c of copies) {
      expect(c.bytes).toHaveLength(original.length);
      let outside = 0;
      let inside = 0;
      for (let i = 0; i < original.length; i++) {
        if (c.bytes[i] === original[i]) continue;
        if (inSlot[i]) inside++;
        else outside++;
      }
      expect(outside).toBe(0);
      expect(inside).toBeGreaterThan(0);
    }
    const [a, b] = copies as [Holder, Holder];
    expect(a.bits).not.toBe(b.bits);
    let differing = 0;
    for (const s of slots)
      if (
        Buffer.compare(
          a.bytes.subarray(s.offset, s.offset + s.size),
          b.bytes.subarray(s.offset, s.offset + s.size),
        )
      )
        differing++;
    expect(differing).toBeGreaterThan(0);
    console.log(`a1 and a2 differ in ${differing} of ${slots.length} slots`);
  });

  it("keeps every copy's held-out accuracy within 0.2 points of the unmarked model", async () => {
    const base = await accuracy(original);
    for (const c of Object.values(holders)) {
      const marked = await accuracy(c.bytes);
      let maxDiff = 0;
      for (let i = 0; i < base.probs.length; i++)
        maxDiff = Math.max(maxDiff, Math.abs((base.probs[i] as number) - (marked.probs[i] as number)));
      console.log(
        `${c.name}: accuracy ${marked.accuracy.toFixed(2)}% vs ${base.accuracy.toFixed(2)}% unmarked, max probability difference ${maxDiff.toExponential(2)}`,
      );
      expect(Math.abs(marked.accuracy - base.accuracy)).toBeLessThanOrEqual(0.2);
    }
  }, 120_000);

  it("traces a byte-for-byte leak to its device and no other", async () => {
    const r = await trace((holders.a2 as Holder).bytes, "verbatim");
    expect(r.verdict).toBe("accused");
    expect(r.names).toEqual(["a2"]);
  }, 60_000);

  it("traces a leak re-saved as float16", async () => {
    const leaked = await reserialize((holders.b1 as Holder).bytes, { float16: true });
    expect((await tensorsOf(leaked)).every((t) => t.dataType !== 1)).toBe(true);
    const r = await trace(leaked, "float16");
    expect(r.names).toEqual(["b1"]);
  }, 60_000);

  it("traces a leak whose initializers were renamed and reordered through the ONNX protobuf", async () => {
    const source = (holders.c1 as Holder).bytes;
    const leaked = await reserialize(source, {
      rename: (n) => `w_${n.length}_${n.split("").reverse().join("")}`,
      reverse: true,
    });
    // Still the same model: it runs and gives the same outputs.
    expect((await accuracy(leaked)).probs).toEqual((await accuracy(source)).probs);
    const names = (await tensorsOf(leaked)).map((t) => t.name);
    expect(names.some((n) => (manifest.trace?.slots ?? []).some((s) => s.tensor === n))).toBe(false);
    const r = await trace(leaked, "renamed");
    expect(r.names).toEqual(["c1"]);
  }, 60_000);

  it("is not fooled by a decoy left under a marked tensor's name while the real one is renamed", async () => {
    const source = (holders.a1 as Holder).bytes;
    const marked = new Set((manifest.trace?.slots ?? []).map((s) => s.tensor));
    const tensors = await tensorsOf(source);
    const normal = gaussian(seededRandom(3));
    // The decoy: the leaker's own weights with every slot drowned in noise, under the old name.
    const extra = tensors
      .filter((t) => marked.has(t.name) && t.values)
      .map((t) => {
        const values = (t.values as Float32Array).slice();
        let s = 0;
        for (const v of values) s += v * v;
        const std = Math.sqrt(s / values.length);
        for (const slot of (manifest.trace?.slots ?? []).filter((x) => x.tensor === t.name))
          for (let k = 0; k < slot.size / 4; k++)
            values[slot.element + k] = (values[slot.element + k] as number) + std * normal();
        return { name: t.name, dims: t.dims, values };
      });
    const leaked = await reserialize(source, { rename: (n) => (marked.has(n) ? `${n}_real` : n), extra });
    const r = await trace(leaked, "decoy");
    expect(r.names).toEqual(["a1"]);
  }, 60_000);

  it("refuses a file that is not a model with ERR_TRACE_LEAK_UNREADABLE", async () => {
    const file = join(h.dir, "not-a-model.onnx");
    await writeFile(file, new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3]));
    const err: string[] = [];
    const code = await main(["trace", file, "--package", dir, "--trace-key", keyFile], {
      out: () => {},
      err: (l) => err.push(l),
      env: { MODELVAULT_SERVER: h.url, MODELVAULT_API_KEY: publisherToken },
    });
    expect(code).toBe(1);
    expect(err.join("\n")).toContain("ERR_TRACE_LEAK_UNREADABLE");
  });

  it("traces a leak with Gaussian noise that costs at most one point of accuracy", async () => {
    const source = (holders.d1 as Holder).bytes;
    const base = (await accuracy(source)).accuracy;
    const random = seededRandom(7);
    const normal = gaussian(random);
    let chosen: { sigma: number; bytes: Uint8Array; accuracy: number } | undefined;
    for (const sigma of [1, 0.7, 0.5, 0.35, 0.25, 0.15, 0.1]) {
      const noisy = await reserialize(source, {
        values: (t) => {
          if (!t.values || t.dims.length < 2) return undefined;
          let s = 0;
          for (const v of t.values) s += v * v;
          const std = Math.sqrt(s / t.values.length);
          return t.values.map((v) => v + sigma * std * normal());
        },
      });
      const acc = (await accuracy(noisy)).accuracy;
      console.log(
        `noise sigma ${sigma} x weight std: accuracy ${acc.toFixed(2)}% (leak without noise ${base.toFixed(2)}%)`,
      );
      if (base - acc <= 1) {
        chosen = { sigma, bytes: noisy, accuracy: acc };
        break;
      }
    }
    expect(chosen).toBeDefined();
    const r = await trace((chosen as { bytes: Uint8Array }).bytes, `noise-${chosen?.sigma}`);
    expect(r.names).toEqual(["d1"]);
  }, 120_000);

  it("accuses one or both of two colluders who average their weights, and no one else", async () => {
    const a = (holders.a1 as Holder).bytes;
    const b = (holders.b1 as Holder).bytes;
    // Average the raw float32 weights of both copies (the graphs are identical outside the slots).
    const ta = await tensorsOf(a);
    const tb = await tensorsOf(b);
    const mean = new Map(
      ta.map((t, i) => {
        const other = tb[i]?.values as Float32Array;
        return [t.name, t.values?.map((v, k) => (v + (other[k] as number)) / 2)];
      }),
    );
    const leaked = await reserialize(a, { values: (t) => mean.get(t.name) });
    const r = await trace(leaked, "average-a1-b1");
    expect(r.names.length).toBeGreaterThan(0);
    for (const n of r.names) expect(["a1", "b1"]).toContain(n);
  }, 60_000);

  it("accuses at least one of three colluders mixing slot by slot, and no one else", async () => {
    const sources = ["b1", "c2", "d1"].map((n) => (holders[n] as Holder).bytes);
    const random = seededRandom(11);
    const leaked = mixSlots(sources[0] as Uint8Array, sources, () => Math.floor(random() * 3));
    const r = await trace(leaked, "mix-b1-c2-d1");
    expect(r.names.length).toBeGreaterThan(0);
    for (const n of r.names) expect(["b1", "c2", "d1"]).toContain(n);
  }, 60_000);

  it("accuses no one for the unmarked model", async () => {
    const r = await trace(original, "unmarked");
    expect(r.verdict).toBe("no-accusation");
    expect(r.accused).toEqual([]);
  }, 60_000);

  it("accuses no one for marked copies of unlisted devices, over many trials", async () => {
    // An unlisted device's copy reads as ±1 per slot from a codeword the server never issued
    // (its bits drawn at random), plus the reading noise of a real extraction.
    const random = seededRandom(99);
    const normal = gaussian(random);
    let accusations = 0;
    const trials = 100;
    for (let t = 0; t < trials; t++) {
      const reads = Array.from({ length: SLOTS }, () => (random() < 0.5 ? -1 : 1) + 0.1 * normal());
      const r = await h.call("POST", `/v1/models/digits/versions/1/traces`, auditorToken, { reads });
      expect(r.status).toBe(200);
      if (r.body.accused.length > 0) accusations++;
    }
    console.log(
      `false accusations: ${accusations} of ${trials} innocent traces (bound: epsilon 1e-3 per trace)`,
    );
    // The bound allows 0.1 expected over these traces (the measured rate, at the code layer, is 0
    // in 2,000: code-rates.test.ts); one would be a legitimate rare event, two would not.
    expect(accusations).toBeLessThanOrEqual(1);
  }, 120_000);
});
