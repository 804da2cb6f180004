import { readFile } from "node:fs/promises";
import { join } from "node:path";
import * as ort from "onnxruntime-web";
import { loadDigits } from "../../models/digits/dataset.js";
import { fromBase64Url } from "../../src/core/bytes.js";
import { type Manifest, shardContext, shardPath } from "../../src/core/manifest.js";
import { importContentKey, openShard } from "../../src/core/shard-cipher.js";
import { slotKeyBytes } from "../../src/core/tracing/slot-keys.js";
import { variantContext, variantPath } from "../../src/core/tracing/trace-manifest.js";

/** The manifest payload of a package, unverified (the tests check signatures elsewhere). */
export async function readManifest(dir: string): Promise<Manifest> {
  const jws = await readFile(join(dir, "manifest.jws"), "utf8");
  return JSON.parse(Buffer.from(jws.split(".")[1] as string, "base64url").toString()) as Manifest;
}

export async function readSecret(path: string): Promise<Uint8Array> {
  return fromBase64Url(JSON.parse(await readFile(path, "utf8")).k);
}

/** Every file of the package decrypted with the raw content key: slots still zero. */
export async function openCommon(
  dir: string,
  m: Manifest,
  rawKey: Uint8Array,
): Promise<Map<string, Uint8Array>> {
  const key = await importContentKey(rawKey);
  const out = new Map<string, Uint8Array>();
  for (const file of m.files) {
    const bytes = new Uint8Array(file.size);
    for (const shard of file.shards) {
      const plain = await openShard(
        key,
        fromBase64Url(shard.iv),
        await readFile(join(dir, shardPath(shard))),
        shardContext(m, file, shard.index),
      );
      bytes.set(plain, shard.index * m.shardSize);
    }
    out.set(file.location, bytes);
  }
  return out;
}

/** Variant `bit` of slot `index` opened with the key derived from the trace secret. */
export async function openVariant(
  dir: string,
  m: Manifest,
  secret: Uint8Array,
  index: number,
  bit: 0 | 1,
  keyBit: 0 | 1 = bit,
  aadBit: 0 | 1 = bit,
): Promise<Uint8Array> {
  const trace = m.trace as NonNullable<Manifest["trace"]>;
  const slot = trace.slots[index] as NonNullable<Manifest["trace"]>["slots"][number];
  const fileSize = m.files.find((f) => f.location === slot.file)?.size as number;
  const key = await importContentKey(await slotKeyBytes(secret, m.model, index, keyBit));
  return openShard(
    key,
    fromBase64Url(slot.variants[bit].iv),
    await readFile(join(dir, variantPath(slot, bit))),
    variantContext(m.model, trace, fileSize, index, aadBit),
  );
}

/** The model files as a device with `codeword` assembles them: common shards plus its variants. */
export async function assemble(
  dir: string,
  m: Manifest,
  common: Map<string, Uint8Array>,
  secret: Uint8Array,
  codeword: ArrayLike<number>,
): Promise<Map<string, Uint8Array>> {
  const files = new Map([...common].map(([k, v]) => [k, v.slice()]));
  for (const [i, slot] of (m.trace?.slots ?? []).entries()) {
    const bit = codeword[i] as 0 | 1;
    (files.get(slot.file) as Uint8Array).set(await openVariant(dir, m, secret, i, bit), slot.offset);
  }
  return files;
}

let heldOut: ReturnType<typeof loadDigits>["heldOut"] | undefined;

/** Held-out accuracy (1500 digits) of a digits model's bytes, in one batch through onnxruntime-web. */
export async function digitsAccuracy(bytes: Uint8Array): Promise<number> {
  ort.env.wasm.numThreads = 1;
  heldOut ??= loadDigits().heldOut;
  const session = await ort.InferenceSession.create(bytes);
  try {
    const batch = new Float32Array(heldOut.length * 784);
    for (const [i, d] of heldOut.entries()) batch.set(d.pixels, i * 784);
    const out = await session.run({ pixels: new ort.Tensor("float32", batch, [heldOut.length, 784]) });
    const probs = out.probabilities?.data as Float32Array;
    let correct = 0;
    for (const [i, d] of heldOut.entries()) {
      const row = Array.from(probs.subarray(i * 10, i * 10 + 10));
      if (row.indexOf(Math.max(...row)) === d.label) correct++;
    }
    return correct / heldOut.length;
  } finally {
    await session.release();
  }
}

const ONNX = { FLOAT: 1, INT64: 7, FLOAT16: 10 };

/**
 * A small model with a float16 weight (inline), a float32 weight in an external-data file
 * behind an int64 table, a float32 bias (rank 1) and an int64 shape: y[1,16] =
 * Reshape(Relu(x·float(W1) + b1)·W2, shape). Eligible for slots: W1 (64×128 float16) and
 * W2 (128×16 float32); never b1, shape or table.
 */
export async function writeFloat16Model(dir: string): Promise<{ path: string; files: string[] }> {
  const { encodeModel } = await import("../../src/pack/onnx/write-model.js");
  const { floatToHalf } = await import("../../src/pack/onnx/read-initializers.js");
  const { writeFile } = await import("node:fs/promises");
  let s = 12345;
  const random = () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31 - 0.5;
  };
  const w1 = Uint16Array.from({ length: 64 * 128 }, () => floatToHalf(random() * 0.4));
  const b1 = Float32Array.from({ length: 128 }, () => random() * 0.1);
  const w2 = Float32Array.from({ length: 128 * 16 }, () => random() * 0.3);
  const table = BigInt64Array.from({ length: 8 }, (_, i) => BigInt(i));
  const data = new Uint8Array(64 + w2.byteLength);
  data.set(new Uint8Array(table.buffer), 0);
  data.set(new Uint8Array(w2.buffer), 64);
  const path = join(dir, "half.onnx");
  const graph = encodeModel({
    name: "half",
    nodes: [
      { op: "Cast", inputs: ["W1"], outputs: ["W1f"], attributes: { to: ONNX.FLOAT } },
      { op: "MatMul", inputs: ["x", "W1f"], outputs: ["h"] },
      { op: "Add", inputs: ["h", "b1"], outputs: ["h1"] },
      { op: "Relu", inputs: ["h1"], outputs: ["h2"] },
      { op: "MatMul", inputs: ["h2", "W2"], outputs: ["y0"] },
      { op: "Reshape", inputs: ["y0", "shape"], outputs: ["y"] },
    ],
    initializers: [
      { name: "W1", dataType: ONNX.FLOAT16, dims: [64, 128], data: w1 },
      { name: "b1", dataType: ONNX.FLOAT, dims: [128], data: b1 },
      {
        name: "table",
        dataType: ONNX.INT64,
        dims: [2, 4],
        external: { location: "half.data", offset: 0, length: 64 },
      },
      {
        name: "W2",
        dataType: ONNX.FLOAT,
        dims: [128, 16],
        external: { location: "half.data", offset: 64, length: w2.byteLength },
      },
      { name: "shape", dataType: ONNX.INT64, dims: [2], data: BigInt64Array.from([1n, 16n]) },
    ],
    inputs: [{ name: "x", dataType: ONNX.FLOAT, shape: [1, 64] }],
    outputs: [{ name: "y", dataType: ONNX.FLOAT, shape: [1, 16] }],
  });
  await writeFile(path, graph);
  await writeFile(join(dir, "half.data"), data);
  return { path, files: [path, join(dir, "half.data")] };
}
