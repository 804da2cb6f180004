import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { openContentKey, TRACE_KEY_CTY } from "../../src/core/content-key-jwe.js";
import type { Manifest } from "../../src/core/manifest.js";
import { slotSigns, weightScale } from "../../src/core/tracing/marks.js";
import { slotElements } from "../../src/core/tracing/trace-manifest.js";
import { bytesSource } from "../../src/pack/onnx/protobuf-read.js";
import { decodeFloats, readInitializers } from "../../src/pack/onnx/read-initializers.js";
import { type PackOptions, type PackResult, packModel } from "../../src/pack/pack-model.js";
import { TRACE_DEFAULTS } from "../../src/pack/trace/trace-options.js";
import { decodeWeights } from "../../src/pack/trace/variants.js";
import { verifyPackage } from "../../src/pack/verify-package.js";
import { makeKeys, type TestKeys, tempDir } from "../fixtures.js";
import {
  assemble,
  digitsAccuracy,
  openCommon,
  openVariant,
  readManifest,
  readSecret,
  writeFloat16Model,
} from "./trace-helpers.js";

const DIGITS = fileURLToPath(new URL("../../models/digits/digits.onnx", import.meta.url));
let keys: TestKeys;
let dir: string;
let n = 0;

beforeAll(async () => {
  keys = await makeKeys();
  dir = await tempDir();
});

type Traced = Manifest & { trace: NonNullable<Manifest["trace"]> };

/** Packs with a recipient and the insecure key (to open the common shards in the test). */
async function pack(modelPath: string, o: Partial<PackOptions> = {}) {
  const name = `p${n++}`;
  const paths = {
    outDir: join(dir, name),
    contentKey: join(dir, `${name}.content.json`),
    traceKey: join(dir, `${name}.trace.json`),
  };
  const result = await packModel({
    modelPath,
    id: "traced",
    version: 1,
    signingKey: keys.publisher.privateJwk,
    recipient: keys.recipient.publicJwk,
    insecureKeyOut: paths.contentKey,
    outDir: paths.outDir,
    traceSlots: 256,
    traceKeyOut: paths.traceKey,
    shardSize: 64 * 1024,
    ...o,
  });
  const manifest = (await readManifest(paths.outDir)) as Traced;
  const common = await openCommon(paths.outDir, manifest, await readSecret(paths.contentKey));
  return { ...paths, result, manifest, common, secret: await readSecret(paths.traceKey) };
}

/** Original float values of every initializer of a model file. */
async function tensors(bytes: Uint8Array) {
  const out = new Map<string, Float32Array>();
  for (const p of await readInitializers(bytesSource(bytes)))
    if (p.data?.file === null)
      out.set(
        p.name,
        decodeFloats(p, bytes.subarray(p.data.offset, p.data.offset + p.data.length)) as Float32Array,
      );
  return out;
}

/** True at every byte of `file` that lies inside a slot. */
function slotMask(m: Traced, location: string, size: number): Uint8Array {
  const mask = new Uint8Array(size);
  for (const s of m.trace.slots) if (s.file === location) mask.fill(1, s.offset, s.offset + s.size);
  return mask;
}

function report(label: string, r: PackResult) {
  const t = r.trace as NonNullable<PackResult["trace"]>;
  const q = t.quality;
  console.log(
    `${label}: ${t.slots} slots × ${t.slotLength} weights (coverage ${(t.coverage * 100).toFixed(1)}% of ${t.eligibleWeights}), ` +
      `strength ${t.strength}; storage overhead ${t.storageOverheadBytes} bytes = ${((t.storageOverheadBytes / r.manifest.size) * 100).toFixed(1)}% of ${r.manifest.size}; ` +
      ("skipped" in q
        ? `guard skipped: ${q.skipped}`
        : `guard maxDiff ${q.maxDiff.toExponential(3)} meanDiff ${q.meanDiff.toExponential(3)} (${q.samples} ${q.inputs} samples, ${q.codewords.join("/")})`),
  );
}

describe("traceable packing of the digits model", () => {
  let p: Awaited<ReturnType<typeof pack>>;
  let original: Uint8Array;
  beforeAll(async () => {
    p = await pack(DIGITS);
    original = new Uint8Array(await readFile(DIGITS));
    report("digits N=256", p.result);
  });

  it("lists N equal slots inside the eligible tensors only, in file and offset order, with δ = strength × std", async () => {
    const { trace } = p.manifest;
    expect(trace.slots).toHaveLength(256);
    expect(p.result.trace).toMatchObject({
      slots: 256,
      slotLength: 198,
      eligibleWeights: 784 * 128 + 128 * 10,
    });
    const originalTensors = await tensors(original);
    const places = await readInitializers(bytesSource(original));
    for (const [i, s] of trace.slots.entries()) {
      expect(["w1", "w2"]).toContain(s.tensor);
      expect(s).toMatchObject({ file: "digits.onnx", type: "float32", size: 198 * 4 });
      const place = places.find((x) => x.name === s.tensor);
      expect(s.offset).toBe((place?.data?.offset as number) + s.element * 4);
      expect(s.element + slotElements(s)).toBeLessThanOrEqual(
        place?.dims.reduce((a, b) => a * b, 1) as number,
      );
      expect(s.delta).toBeCloseTo(
        TRACE_DEFAULTS.strength * weightScale(originalTensors.get(s.tensor) as Float32Array),
        12,
      );
      const before = trace.slots[i - 1];
      if (before) expect(s.offset).toBeGreaterThanOrEqual(before.offset + before.size);
    }
    // In proportion to size: w2 holds 1280 of 101,632 weights, about 3 of 256 slots.
    expect(trace.slots.filter((s) => s.tensor === "w2").length).toBe(3);
  });

  it("writes trace-key.jwe (the secret, sealed to the recipient) and the publisher's 0600 trace key", async () => {
    expect((await readdir(p.outDir)).sort()).toEqual([
      "content-key.jwe",
      "manifest.jws",
      "shards",
      "trace-key.jwe",
    ]);
    expect((await stat(p.traceKey)).mode & 0o777).toBe(0o600);
    const file = JSON.parse(await readFile(p.traceKey, "utf8"));
    expect(file).toEqual({
      kty: "oct",
      use: "modelvault-trace",
      k: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      model: { id: "traced", version: 1 },
      contentKeyId: p.manifest.contentKeyId,
    });
    const expect_ = { modelId: "traced", modelVersion: 1, contentKeyId: p.manifest.contentKeyId };
    const jwe = await readFile(join(p.outDir, "trace-key.jwe"), "utf8");
    const opened = await openContentKey(jwe, keys.recipient.privateJwk, expect_, TRACE_KEY_CTY);
    expect(Buffer.from(opened.key).equals(Buffer.from(p.secret))).toBe(true);
    // Not interchangeable with the content key's envelope.
    await expect(openContentKey(jwe, keys.recipient.privateJwk, expect_)).rejects.toThrow();
  });

  it("seals the common shards with zeros exactly at the slots and the original bytes everywhere else", () => {
    const common = p.common.get("digits.onnx") as Uint8Array;
    const mask = slotMask(p.manifest, "digits.onnx", original.length);
    let differ = 0;
    let zeroed = 0;
    for (let i = 0; i < original.length; i++) {
      if (common[i] !== (mask[i] ? 0 : original[i])) differ++;
      if (mask[i]) zeroed++;
    }
    expect(differ).toBe(0);
    expect(zeroed).toBe(256 * 198 * 4);
  });

  it("seals each variant under its own key and AAD; v1 − v0 = 2δ·signs", async () => {
    for (const index of [0, 100, 255]) {
      const slot = p.manifest.trace.slots[index] as Traced["trace"]["slots"][number];
      const [v0, v1] = [
        decodeWeights(await openVariant(p.outDir, p.manifest, p.secret, index, 0), "float32"),
        decodeWeights(await openVariant(p.outDir, p.manifest, p.secret, index, 1), "float32"),
      ];
      const signs = await slotSigns(p.secret, index, v0.length);
      const w = decodeWeights(original.subarray(slot.offset, slot.offset + slot.size), "float32");
      for (let k = 0; k < v0.length; k++) {
        const s = signs[k] as number;
        expect((v1[k] as number) - (v0[k] as number)).toBeCloseTo(2 * slot.delta * s, 6);
        expect(v0[k]).toBe(Math.fround((w[k] as number) - slot.delta * s));
        expect(v1[k]).toBe(Math.fround((w[k] as number) + slot.delta * s));
      }
      for (const [keyBit, aadBit] of [
        [1, 0],
        [0, 1],
      ] as const) {
        await expect(
          openVariant(p.outDir, p.manifest, p.secret, index, 0, keyBit, aadBit),
        ).rejects.toMatchObject({
          code: "ERR_SHARD_DECRYPT_FAILED",
        });
      }
      // The wrong key (the other bit's) under the right AAD, and another slot's key, fail too.
      await expect(openVariant(p.outDir, p.manifest, p.secret, index, 1, 0, 1)).rejects.toThrow();
      const other = crypto.getRandomValues(new Uint8Array(32));
      await expect(openVariant(p.outDir, p.manifest, other, index, 0)).rejects.toThrow();
    }
  });

  it("a model assembled for any codeword differs from the original only inside the slots", async () => {
    const mask = slotMask(p.manifest, "digits.onnx", original.length);
    const random = crypto.getRandomValues(new Uint8Array(256)).map((b) => b & 1);
    for (const codeword of [new Uint8Array(256), new Uint8Array(256).fill(1), random]) {
      const model = (await assemble(p.outDir, p.manifest, p.common, p.secret, codeword)).get(
        "digits.onnx",
      ) as Uint8Array;
      let outside = 0;
      let inside = 0;
      for (let i = 0; i < original.length; i++) {
        if (model[i] === original[i]) continue;
        if (mask[i]) inside++;
        else outside++;
      }
      expect(outside).toBe(0);
      expect(inside).toBeGreaterThan(0);
    }
  });

  it("verify checks the variants, decrypts them with the recipient key, extracts the all-0 model; catches a tampered variant", async () => {
    const ok = await verifyPackage(p.outDir, {
      publisherKeys: [keys.publisher.publicJwk],
      recipientKey: keys.recipient.privateJwk,
      extractTo: join(dir, "extracted"),
    });
    expect(ok.variants).toEqual({ checked: 512, decrypted: true });
    expect(ok.extractedVariant).toBe(0);
    const allZero = (await assemble(p.outDir, p.manifest, p.common, p.secret, new Uint8Array(256))).get(
      "digits.onnx",
    );
    expect(
      Buffer.from(await readFile(join(dir, "extracted", "digits.onnx"))).equals(
        Buffer.from(allZero as Uint8Array),
      ),
    ).toBe(true);
    const digestsOnly = await verifyPackage(p.outDir, { publisherKeys: [keys.publisher.publicJwk] });
    expect(digestsOnly.variants).toEqual({ checked: 512, decrypted: false });
    const withTraceKey = await verifyPackage(p.outDir, {
      publisherKeys: [keys.publisher.publicJwk],
      traceKey: JSON.parse(await readFile(p.traceKey, "utf8")),
    });
    expect(withTraceKey.variants).toEqual({ checked: 512, decrypted: true });

    const slot = p.manifest.trace.slots[7] as Traced["trace"]["slots"][number];
    const file = join(p.outDir, "shards", `${slot.variants[1].sha256}.bin`);
    const bytes = await readFile(file);
    bytes[3] = (bytes[3] as number) ^ 1;
    await writeFile(file, bytes);
    await expect(
      verifyPackage(p.outDir, { publisherKeys: [keys.publisher.publicJwk] }),
    ).rejects.toMatchObject({
      code: "ERR_SHARD_DIGEST_MISMATCH",
      data: { location: "digits.onnx#trace-1", index: 7 },
    });
  });
});

describe("digits accuracy of marked models at the defaults", () => {
  it.each([256, 512])("N = %i: all-0, all-1 and a random codeword stay within 0.2 points", async (slots) => {
    const p = await pack(DIGITS, { traceSlots: slots });
    report(`digits N=${slots}`, p.result);
    const unmarked = await digitsAccuracy(new Uint8Array(await readFile(DIGITS)));
    const zeroed = await digitsAccuracy(p.common.get("digits.onnx") as Uint8Array);
    const random = crypto.getRandomValues(new Uint8Array(slots)).map((b) => b & 1);
    const rows: string[] = [];
    for (const [name, codeword] of [
      ["all-0", new Uint8Array(slots)],
      ["all-1", new Uint8Array(slots).fill(1)],
      ["random", random],
    ] as const) {
      const files = await assemble(p.outDir, p.manifest, p.common, p.secret, codeword);
      const accuracy = await digitsAccuracy(files.get("digits.onnx") as Uint8Array);
      rows.push(
        `${name} ${(accuracy * 100).toFixed(2)}% (${((accuracy - unmarked) * 100).toFixed(2)} points)`,
      );
      expect(Math.abs(accuracy - unmarked)).toBeLessThanOrEqual(0.002 + 1e-9);
    }
    console.log(
      `digits N=${slots} held-out accuracy: unmarked ${(unmarked * 100).toFixed(2)}%; ${rows.join("; ")}; slots zeroed ${(zeroed * 100).toFixed(2)}%`,
    );
    expect(zeroed).toBeLessThan(unmarked - 0.2); // wiping the slots wrecks the model
  });
});

describe("traceable packing of a float16 model with external data", () => {
  it("marks only the float16 and float32 weight matrices, and the float16 variants really differ", async () => {
    const model = await writeFloat16Model(await tempDir());
    const p = await pack(model.path, { traceSlots: 16 });
    report("float16 synthetic N=16", p.result);
    const { slots } = p.manifest.trace;
    expect(new Set(slots.map((s) => s.tensor))).toEqual(new Set(["W1", "W2"]));
    expect(
      slots.filter((s) => s.tensor === "W1").every((s) => s.type === "float16" && s.file === "half.onnx"),
    ).toBe(true);
    const external = slots.filter((s) => s.tensor === "W2");
    expect(external.every((s) => s.type === "float32" && s.file === "half.data" && s.offset >= 64)).toBe(
      true,
    );
    expect(p.result.trace?.slotLength).toBe(Math.floor((0.5 * (64 * 128 + 128 * 16)) / 16));
    expect("skipped" in (p.result.trace?.quality ?? {})).toBe(false);
    for (const [index, slot] of slots.entries()) {
      if (slot.type !== "float16") continue;
      const v0 = decodeWeights(await openVariant(p.outDir, p.manifest, p.secret, index, 0), "float16");
      const v1 = decodeWeights(await openVariant(p.outDir, p.manifest, p.secret, index, 1), "float16");
      const signs = await slotSigns(p.secret, index, v0.length);
      for (let k = 0; k < v0.length; k++) {
        const d = (v1[k] as number) - (v0[k] as number);
        expect(d * (signs[k] as number)).toBeGreaterThan(0); // never equal, always along the sign
        expect(Math.abs(d - 2 * slot.delta * (signs[k] as number))).toBeLessThan(slot.delta); // within float16 rounding
      }
    }
    // Both files' common bytes are the originals with zeros at their slots.
    for (const [location, path] of [
      ["half.onnx", model.path],
      ["half.data", model.files[1] as string],
    ] as const) {
      const original = new Uint8Array(await readFile(path));
      const mask = slotMask(p.manifest, location, original.length);
      const common = p.common.get(location) as Uint8Array;
      expect(common.every((b, i) => (mask[i] ? b === 0 : b === original[i]))).toBe(true);
    }
  });

  it("skips the guard with a reason when it cannot draw the inputs (a string input), and still packs", async () => {
    const { encodeModel } = await import("../../src/pack/onnx/write-model.js");
    const path = join(await tempDir(), "strings.onnx");
    const w = Float32Array.from({ length: 64 * 64 }, (_, i) => Math.sin(i));
    await writeFile(
      path,
      encodeModel({
        name: "strings",
        nodes: [{ op: "MatMul", inputs: ["x", "W"], outputs: ["y"] }],
        initializers: [{ name: "W", dataType: 1, dims: [64, 64], data: w }],
        inputs: [
          { name: "x", dataType: 1, shape: [1, 64] },
          { name: "label", dataType: 8, shape: [1] },
        ],
        outputs: [{ name: "y", dataType: 1, shape: [1, 64] }],
      }),
    );
    const p = await pack(path, { traceSlots: 8 });
    expect(p.result.trace?.quality).toEqual({
      skipped: 'input "label" has type string; give sample inputs (--trace-inputs)',
      tolerance: TRACE_DEFAULTS.tolerance,
    });
    expect(p.manifest.trace.slots).toHaveLength(8);
  });

  it("refuses a strength too small for float16 to tell the variants apart", async () => {
    const model = await writeFloat16Model(await tempDir());
    const outDir = join(dir, "weak");
    await expect(
      packModel({
        modelPath: model.path,
        id: "weak",
        version: 1,
        signingKey: keys.publisher.privateJwk,
        recipient: keys.recipient.publicJwk,
        outDir,
        traceSlots: 16,
        traceKeyOut: join(dir, "weak.trace.json"),
        traceStrength: 1e-5,
      }),
    ).rejects.toMatchObject({ code: "ERR_PACK_TRACE_INVALID", data: { path: "traceStrength" } });
    await expect(stat(outDir)).rejects.toThrow();
    await expect(stat(join(dir, "weak.trace.json"))).rejects.toThrow();
  });
});

describe("refusals leave nothing behind", () => {
  /** Packs the digits model with `o` and expects `code` (and data.path), with no output, key file or staging left. */
  async function refused(o: Partial<PackOptions>, code: string, path?: string) {
    const name = `r${n++}`;
    const outDir = join(dir, name);
    const keyOut = join(dir, `${name}.trace.json`);
    const contentKey = join(dir, `${name}.content.json`);
    const error = await packModel({
      modelPath: DIGITS,
      id: "refused",
      version: 1,
      signingKey: keys.publisher.privateJwk,
      recipient: keys.recipient.publicJwk,
      insecureKeyOut: contentKey,
      outDir,
      traceSlots: 64,
      traceKeyOut: keyOut,
      ...o,
    }).then(
      () => undefined,
      (e) => e,
    );
    expect(error, JSON.stringify(o)).toMatchObject({
      code,
      ...(path ? { data: expect.objectContaining({ path }) } : {}),
    });
    for (const left of [outDir, contentKey, ...(o.traceKeyOut === undefined ? [keyOut] : [])])
      await expect(stat(left)).rejects.toThrow();
    expect((await readdir(dir)).filter((f) => f.includes(".tmp-"))).toEqual([]);
    return error;
  }

  it("refuses marks that move the outputs beyond the tolerance (ERR_PACK_TRACE_TOLERANCE, data.maxDiff)", async () => {
    const e = await refused({ traceTolerance: 1e-9 }, "ERR_PACK_TRACE_TOLERANCE");
    expect(e.data.maxDiff).toBeGreaterThan(1e-9);
    expect(e.message).toMatch(/tolerance/);
    // A strength that costs accuracy is refused by the default tolerance.
    const strong = await refused({ traceStrength: 0.5 }, "ERR_PACK_TRACE_TOLERANCE");
    console.log(
      `strength 0.5 refused at the default tolerance ${TRACE_DEFAULTS.tolerance}: maxDiff ${strong.data.maxDiff}`,
    );
  });

  it.each<[string, Partial<PackOptions>, string]>([
    ["0 slots", { traceSlots: 0 }, "traceSlots"],
    ["513 slots", { traceSlots: 513 }, "traceSlots"],
    ["a fractional slot count", { traceSlots: 1.5 }, "traceSlots"],
    ["NaN slots", { traceSlots: Number.NaN }, "traceSlots"],
    ["no trace key file", { traceKeyOut: undefined }, "traceKeyOut"],
    ["a trace key file in a missing folder", { traceKeyOut: "/nonexistent-folder/t.json" }, "traceKeyOut"],
    ["a strength of 0", { traceStrength: 0 }, "traceStrength"],
    ["a negative strength", { traceStrength: -0.1 }, "traceStrength"],
    ["a strength above 1", { traceStrength: 2 }, "traceStrength"],
    ["a coverage of 0", { traceCoverage: 0 }, "traceCoverage"],
    ["a coverage above 1", { traceCoverage: 1.5 }, "traceCoverage"],
    ["a negative tolerance", { traceTolerance: -1 }, "traceTolerance"],
    ["an infinite tolerance", { traceTolerance: Number.POSITIVE_INFINITY }, "traceTolerance"],
    ["too few weights for the slots", { traceSlots: 512, traceCoverage: 0.1 }, "traceSlots"],
    ["an empty input list", { traceInputs: [] }, "traceInputs"],
    ["a feed naming no input", { traceInputs: [{ nope: { dims: [1], data: [0] } }] }, "traceInputs.0.nope"],
    ["a feed missing an input", { traceInputs: [{}] }, "traceInputs.0.pixels"],
    [
      "a feed of the wrong shape",
      { traceInputs: [{ pixels: { dims: [1, 10], data: new Array(10).fill(0) } }] },
      "traceInputs.0.pixels.dims",
    ],
    [
      "a feed with too few values",
      { traceInputs: [{ pixels: { dims: [1, 784], data: [1] } }] },
      "traceInputs.0.pixels.data",
    ],
  ])("refuses %s (ERR_PACK_TRACE_INVALID)", async (_, o, path) => {
    await refused(o, "ERR_PACK_TRACE_INVALID", path);
  });

  it("refuses tracing options without traceSlots, and a trace key file that exists or lies in the output", async () => {
    await refused(
      { traceSlots: undefined, traceKeyOut: undefined, traceStrength: 0.01 },
      "ERR_PACK_TRACE_INVALID",
      "traceStrength",
    );
    await refused({ traceSlots: undefined }, "ERR_PACK_TRACE_INVALID", "traceKeyOut");
    const existing = join(dir, "existing.trace.json");
    await writeFile(existing, "{}");
    await refused({ traceKeyOut: existing }, "ERR_PACK_TRACE_INVALID", "traceKeyOut");
    expect(await readFile(existing, "utf8")).toBe("{}");
    await refused(
      { outDir: join(dir, "inside"), traceKeyOut: join(dir, "inside", "k.json") },
      "ERR_PACK_TRACE_INVALID",
      "traceKeyOut",
    );
  });

  it("runs the guard on the user's sample inputs when given", async () => {
    const { loadDigits } = await import("../../models/digits/dataset.js");
    const feeds = loadDigits()
      .heldOut.slice(0, 8)
      .map((d) => ({ pixels: { dims: [1, 784], data: d.pixels } }));
    const p = await pack(DIGITS, { traceSlots: 64, traceInputs: feeds });
    expect(p.result.trace?.quality).toMatchObject({
      inputs: "given",
      samples: 8,
      codewords: ["all-0", "all-1", "random", "random"],
    });
    report("digits N=64 on 8 held-out digits", p.result);
  });
});
