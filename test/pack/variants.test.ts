import { describe, expect, it } from "vitest";
import { markVariant, slotSigns } from "../../src/core/tracing/marks.js";
import { floatToHalf, halfToFloat } from "../../src/pack/onnx/read-initializers.js";
import { decodeWeights, encodeWeights, markSlot, markWeights } from "../../src/pack/trace/variants.js";

describe("slot variants", () => {
  it("markWeights is marks.ts markVariant, bit for bit", async () => {
    const weights = Float32Array.from(
      { length: 5000 },
      () => (Math.random() - 0.5) * 10 ** (Math.random() * 6 - 4),
    );
    const signs = await slotSigns(crypto.getRandomValues(new Uint8Array(32)), 3, weights.length);
    for (const bit of [0, 1] as const)
      for (const delta of [1e-3, 0.0123456789, 7])
        expect(Buffer.from(markWeights(weights, signs, delta, bit).buffer)).toEqual(
          Buffer.from(markVariant(weights, signs, delta, bit).buffer),
        );
  });

  it("decodes and encodes float32 and float16 like the ONNX readers", () => {
    const values = Float32Array.from({ length: 1000 }, () => (Math.random() - 0.5) * 100);
    const f32 = encodeWeights(values, "float32");
    const view = new DataView(f32.buffer);
    expect(Array.from(values, (_, i) => view.getFloat32(i * 4, true))).toEqual(Array.from(values));
    expect(decodeWeights(f32, "float32")).toEqual(values);
    const f16 = encodeWeights(values, "float16");
    const hv = new DataView(f16.buffer);
    for (let i = 0; i < values.length; i++)
      expect(hv.getUint16(i * 2, true)).toBe(floatToHalf(values[i] as number));
    const back = decodeWeights(f16, "float16");
    for (let i = 0; i < values.length; i++)
      expect(back[i]).toBe(Math.fround(halfToFloat(floatToHalf(values[i] as number))));
    // Unaligned views decode too (a slot inside a file buffer starts anywhere).
    const shifted = new Uint8Array(f32.length + 1);
    shifted.set(f32, 1);
    expect(decodeWeights(shifted.subarray(1), "float32")).toEqual(values);
    // Node Buffers (readFile's) whose slice() is a view of a larger allocation.
    const inFile = Buffer.concat([Buffer.alloc(12, 0xff), Buffer.from(f32), Buffer.alloc(12, 0xff)]);
    expect(decodeWeights(inFile.subarray(12, 12 + f32.length), "float32")).toEqual(values);
    expect(decodeWeights(Buffer.from(f16), "float16")).toEqual(back);
  });

  it("refuses float16 variants that rounding made equal, and non-finite ones", async () => {
    const weights = encodeWeights(
      Float32Array.from({ length: 256 }, () => 1 + Math.random()),
      "float16",
    );
    const signs = await slotSigns(new Uint8Array(32), 0, 256);
    const where = { index: 0, tensor: "W" };
    expect(() => markSlot(weights, "float16", signs, 1e-5, where)).toThrow(
      expect.objectContaining({
        code: "ERR_PACK_TRACE_INVALID",
        data: expect.objectContaining({ path: "traceStrength" }),
      }),
    );
    expect(markSlot(weights, "float16", signs, 1e-2, where)).toHaveLength(2);
    const big = encodeWeights(new Float32Array(256).fill(65000), "float16");
    expect(() => markSlot(big, "float16", signs, 1000, where)).toThrow(/non-finite/);
  });
});
