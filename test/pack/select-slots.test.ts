import { describe, expect, it } from "vitest";
import { bytesSource } from "../../src/pack/onnx/protobuf-read.js";
import { bytesField, message, stringField, varintField } from "../../src/pack/onnx/protobuf-write.js";
import { readInitializers } from "../../src/pack/onnx/read-initializers.js";
import { encodeModel } from "../../src/pack/onnx/write-model.js";
import { type EligibleTensor, eligibleTensors, selectSlots } from "../../src/pack/trace/select-slots.js";

const tensor = (name: string, elements: number, offset = 0, file = "m.onnx"): EligibleTensor => ({
  name,
  type: "float32",
  file,
  offset,
  elements,
  scale: 1,
});

describe("slot selection", () => {
  it("gives tensors slots in proportion to their size, evenly spaced, in file and offset order", () => {
    const tensors = [
      tensor("a", 30_000, 100),
      tensor("b", 10_000, 200_000),
      tensor("c", 10_000, 0, "m.data"),
    ];
    const { length, eligible, slots } = selectSlots(tensors, 50, 0.5, 32);
    expect(eligible).toBe(50_000);
    expect(length).toBe(500);
    const per = (name: string) => slots.filter((s) => s.tensor === name);
    expect([per("a").length, per("b").length, per("c").length]).toEqual([30, 10, 10]);
    const a = per("a");
    // Centred in equal parts of the tensor: starts 1000 elements apart, the first at (1000 − 500)/2.
    expect(a.map((s) => s.element)).toEqual(a.map((_, j) => 250 + j * 1000));
    for (const s of slots) {
      expect(s.size).toBe(500 * 4);
      expect(s.offset).toBe(
        (tensors.find((t) => t.name === s.tensor) as EligibleTensor).offset + s.element * 4,
      );
    }
    // Order: file by file as given to the selector, offsets increasing and never overlapping.
    for (let i = 1; i < slots.length; i++) {
      const [p, s] = [slots[i - 1], slots[i]] as [(typeof slots)[0], (typeof slots)[0]];
      if (p.file === s.file) expect(s.offset).toBeGreaterThanOrEqual(p.offset + p.size);
    }
  });

  it("never puts more slots in a tensor than fit, and refuses when the slots do not fit at all", () => {
    // The tiny tensor's share (0.1 slot) would round to a slot it cannot hold: the big one takes it.
    const { slots, length } = selectSlots([tensor("big", 1000), tensor("tiny", 40, 8000)], 3, 0.9, 32);
    expect(length).toBe(312);
    expect(slots.map((s) => s.tensor)).toEqual(["big", "big", "big"]);
    expect(() => selectSlots([tensor("a", 100), tensor("b", 100, 1000)], 3, 1, 32)).toThrow(
      expect.objectContaining({
        code: "ERR_PACK_TRACE_INVALID",
        data: expect.objectContaining({ path: "traceSlots" }),
      }),
    );
    expect(() => selectSlots([tensor("a", 1000)], 100, 0.5, 32)).toThrow(/too few weights/);
  });

  it("keeps only raw float32/float16 tensors of rank >= 2 in the package's files", async () => {
    const f32 = new Float32Array(64);
    const model = encodeModel({
      name: "g",
      nodes: [],
      initializers: [
        { name: "w", dataType: 1, dims: [8, 8], data: f32 },
        { name: "h", dataType: 10, dims: [4, 8], data: new Uint16Array(32) },
        { name: "bias", dataType: 1, dims: [64], data: f32 },
        { name: "idx", dataType: 7, dims: [4, 2], data: new BigInt64Array(8) },
        { name: "d", dataType: 11, dims: [4, 4], data: new Float64Array(16) },
        { name: "ext", dataType: 1, dims: [2, 4], external: { location: "x.data", offset: 0, length: 32 } },
        { name: "other", dataType: 1, dims: [2, 4], external: { location: "y.data", offset: 0, length: 32 } },
      ],
      inputs: [],
      outputs: [{ name: "w", dataType: 1, shape: [8, 8] }],
    });
    const places = await readInitializers(bytesSource(model));
    const eligible = eligibleTensors(places, "g.onnx", ["g.onnx", "x.data"]);
    expect(eligible.map((t) => [t.name, t.type, t.file])).toEqual([
      ["w", "float32", "g.onnx"],
      ["h", "float16", "g.onnx"],
      ["ext", "float32", "x.data"],
    ]);
  });

  it("reads an external tensor's length from its element type when the entry has none", async () => {
    const entry = (k: string, v: string) => bytesField(13, message(stringField(1, k), stringField(2, v)));
    const tensorProto = message(
      varintField(1, 3),
      varintField(1, 2),
      varintField(2, 7), // int64: 8 bytes per element
      stringField(8, "i"),
      entry("location", "x.data"),
      entry("offset", "8"),
      varintField(14, 1),
    );
    const model = message(varintField(1, 8), bytesField(7, bytesField(5, tensorProto)));
    const [place] = await readInitializers(bytesSource(model));
    expect(place?.data).toEqual({ file: "x.data", offset: 8, length: 48, encoding: "raw" });
  });
});
