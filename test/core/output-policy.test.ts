import { describe, expect, it } from "vitest";
import type { TensorInfo } from "../../src/core/manifest.js";
import { applyOutputPolicy, checkOutputPolicy } from "../../src/core/output-policy.js";

const t = (type: string, data: ArrayBufferView, dims: number[]) => ({ y: { type, data, dims } });
const values = (out: Record<string, { data: ArrayBufferView }>) =>
  Array.from(out.y?.data as unknown as ArrayLike<number | bigint>);

describe("output policy", () => {
  it("topK keeps the k largest of each row along the last axis; the rest become the type's lowest value", () => {
    const out = applyOutputPolicy(
      { topK: 2 },
      t("float32", new Float32Array([0.1, 0.5, 0.2, 0.9, 0.3, 0.3]), [2, 3]),
    );
    expect(values(out)).toEqual([-Infinity, 0.5, 0.2, 0.9, 0.3, -Infinity].map(Math.fround));
  });

  it("on equal values the lower index wins; NaN ranks last", () => {
    expect(values(applyOutputPolicy({ topK: 1 }, t("float64", new Float64Array([3, 3, 1]), [3])))).toEqual([
      3,
      -Infinity,
      -Infinity,
    ]);
    expect(
      values(applyOutputPolicy({ topK: 1 }, t("float64", new Float64Array([Number.NaN, -5, -7]), [3]))),
    ).toEqual([-Infinity, -5, -Infinity]);
  });

  it("integers are floored to their type's minimum; 64-bit ones too", () => {
    expect(values(applyOutputPolicy({ topK: 1 }, t("int8", new Int8Array([1, 9, -3]), [3])))).toEqual([
      -128, 9, -128,
    ]);
    expect(values(applyOutputPolicy({ topK: 1 }, t("uint16", new Uint16Array([1, 9, 3]), [3])))).toEqual([
      0, 9, 0,
    ]);
    expect(values(applyOutputPolicy({ topK: 1 }, t("int32", new Int32Array([1, 9, 3]), [3])))).toEqual([
      -(2 ** 31),
      9,
      -(2 ** 31),
    ]);
    expect(values(applyOutputPolicy({ topK: 1 }, t("int64", new BigInt64Array([1n, 9n, 3n]), [3])))).toEqual([
      -(2n ** 63n),
      9n,
      -(2n ** 63n),
    ]);
  });

  it("k at least the row length, and rank-0 outputs, are unchanged", () => {
    expect(values(applyOutputPolicy({ topK: 3 }, t("float32", new Float32Array([1, 2, 3]), [3])))).toEqual([
      1, 2, 3,
    ]);
    expect(values(applyOutputPolicy({ topK: 1 }, t("float32", new Float32Array([7]), [])))).toEqual([7]);
  });

  it("an output whose last axis is empty is returned untouched (rows of width 0 would never end)", () => {
    let reads = 0;
    // Counts the row walk's reads, so that a walk that never ends fails instead of hanging.
    const data = new Proxy(new Float32Array(0), {
      get(target, p) {
        if (p === "length" && ++reads > 100) throw new Error("walked rows of width 0");
        return Reflect.get(target, p);
      },
    });
    expect(() => applyOutputPolicy({ topK: 1 }, t("float32", data, [4, 0]))).not.toThrow();
    expect(data.length).toBe(0);
  });

  it("decimals rounds floats half away from zero and leaves non-finite values and integers alone", () => {
    const out = applyOutputPolicy(
      { decimals: 1 },
      t("float64", new Float64Array([0.25, -0.25, 1.04, Number.POSITIVE_INFINITY, Number.NaN]), [5]),
    );
    expect(values(out).slice(0, 4)).toEqual([0.3, -0.3, 1, Number.POSITIVE_INFINITY]);
    expect(Number.isNaN(values(out)[4] as number)).toBe(true);
    expect(values(applyOutputPolicy({ decimals: 0 }, t("int32", new Int32Array([5]), [1])))).toEqual([5]);
  });

  it("no policy (or an empty one) returns outputs untouched, of any type", () => {
    const strings = t("string", ["a"] as unknown as ArrayBufferView, [1]);
    expect(applyOutputPolicy(undefined, strings)).toBe(strings);
    expect(applyOutputPolicy({}, strings)).toBe(strings);
  });

  it("refuses what it cannot harden, at load (declared types) and at run (actual types)", () => {
    const outputs = (type: TensorInfo["type"]): TensorInfo[] => [{ name: "y", type, shape: [1] }];
    for (const type of ["string", "bool", "float16", "bfloat16", "unknown"] as const) {
      expect(() => checkOutputPolicy({ topK: 1 }, outputs(type))).toThrowError(
        expect.objectContaining({ code: "ERR_OUTPUT_POLICY_UNSUPPORTED" }),
      );
      expect(() => checkOutputPolicy(undefined, outputs(type))).not.toThrow();
    }
    expect(() => checkOutputPolicy({ decimals: 2 }, outputs("float32"))).not.toThrow();
    expect(() => applyOutputPolicy({ decimals: 2 }, t("bool", new Uint8Array([1]), [1]))).toThrowError(
      expect.objectContaining({ code: "ERR_OUTPUT_POLICY_UNSUPPORTED" }),
    );
  });
});
