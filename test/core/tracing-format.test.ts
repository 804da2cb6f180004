import { describe, expect, it } from "vitest";
import { unwrapKeysOnDevice, wrapKeysForDevice } from "../../src/core/cek-wrap.js";
import { type Manifest, parseManifest } from "../../src/core/manifest.js";
import {
  decodeBits,
  encodeBits,
  slotKeyBytes,
  splitWrappedKeys,
  traceWrapInfo,
} from "../../src/core/tracing/slot-keys.js";
import { TRACE_SCHEME } from "../../src/core/tracing/trace-manifest.js";
import { floatToHalf, halfToFloat } from "../../src/pack/onnx/read-initializers.js";

const variant = { sha256: "a".repeat(64), iv: "AAAAAAAAAAAAAAAA" };
const slot = (over: Record<string, unknown> = {}) => ({
  file: "model.onnx",
  offset: 1000,
  size: 400,
  tensor: "w1",
  element: 0,
  type: "float32",
  delta: 0.001,
  variants: [variant, variant],
  ...over,
});
const base = {
  format: "modelvault/1",
  model: { id: "m", version: 1 },
  cipher: "A256GCM",
  contentKeyId: "AAAAAAAAAAAAAAAAAAAAAA",
  shardSize: 65536,
  size: 70000,
  files: [
    {
      role: "graph",
      location: "model.onnx",
      size: 70000,
      shards: [
        { index: 0, size: 65536, sha256: "b".repeat(64), iv: "AAAAAAAAAAAAAAAA" },
        { index: 1, size: 4464, sha256: "c".repeat(64), iv: "AAAAAAAAAAAAAAAA" },
      ],
    },
  ],
  signature: { inputs: [], outputs: [{ name: "y", type: "float32", shape: [1] }] },
  createdAt: new Date().toISOString(),
};
const withSlots = (slots: unknown[]) => ({ ...base, trace: { scheme: TRACE_SCHEME, slots } });
const problem = (slots: unknown[]) => {
  try {
    parseManifest(withSlots(slots));
    return "ok";
  } catch (e) {
    return (e as { data?: { path?: string } }).data?.path;
  }
};

describe("the manifest's trace section", () => {
  it("accepts slots in order inside their file", () => {
    const m: Manifest = parseManifest(withSlots([slot(), slot({ offset: 1400 })]));
    expect(m.trace?.slots).toHaveLength(2);
  });
  it("refuses slots outside their file, overlapping, out of order, partial elements, unknown files", () => {
    expect(problem([slot({ offset: 69800 })])).toBe("trace.slots.0.size");
    expect(problem([slot(), slot({ offset: 1200 })])).toBe("trace.slots.1.offset");
    expect(problem([slot({ offset: 2000 }), slot()])).toBe("trace.slots.1.offset");
    expect(problem([slot({ size: 402 })])).toBe("trace.slots.0.size");
    expect(problem([slot({ file: "other.bin" })])).toBe("trace.slots.0.file");
    expect(problem([slot({ delta: 0 })])).toBe("trace.slots.0.delta");
    expect(problem([])).toBe("trace.slots");
  });
});

describe("slot keys and codewords", () => {
  it("encodes codewords bit for bit", () => {
    const bits = Uint8Array.from({ length: 77 }, (_, i) => ((i * 7) % 3 === 0 ? 1 : 0));
    expect(decodeBits(encodeBits(bits), 77)).toEqual(bits);
    expect(() => decodeBits(encodeBits(bits), 90)).toThrow(RangeError);
  });
  it("derives a different key per model, version, slot and bit", async () => {
    const secret = crypto.getRandomValues(new Uint8Array(32));
    const keys = await Promise.all([
      slotKeyBytes(secret, { id: "m", version: 1 }, 0, 0),
      slotKeyBytes(secret, { id: "m", version: 1 }, 0, 1),
      slotKeyBytes(secret, { id: "m", version: 1 }, 1, 0),
      slotKeyBytes(secret, { id: "m", version: 2 }, 0, 0),
      slotKeyBytes(secret, { id: "n", version: 1 }, 0, 0),
    ]);
    expect(new Set(keys.map((k) => Buffer.from(k).toString("hex"))).size).toBe(5);
    expect(await slotKeyBytes(secret, { id: "m", version: 1 }, 0, 0)).toEqual(keys[0]);
  });
  it("wraps many keys to a device that alone unwraps them, into non-extractable keys", async () => {
    const device = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, [
      "deriveKey",
    ]);
    const jwk = await crypto.subtle.exportKey("jwk", device.publicKey);
    const raws = [crypto.getRandomValues(new Uint8Array(32)), crypto.getRandomValues(new Uint8Array(32))];
    const info = traceWrapInfo("jti", "m", 1);
    const { epk, wrapped } = await wrapKeysForDevice(
      raws,
      { kty: "EC", crv: "P-256", x: jwk.x as string, y: jwk.y as string },
      info,
    );
    const joined = Buffer.concat(wrapped).toString("base64url");
    const keys = await unwrapKeysOnDevice(device.privateKey, epk, splitWrappedKeys(joined, 2), info);
    expect(keys.map((k) => k.extractable)).toEqual([false, false]);
    const other = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, false, [
      "deriveKey",
    ]);
    await expect(unwrapKeysOnDevice(other.privateKey, epk, wrapped, info)).rejects.toThrow();
    await expect(
      unwrapKeysOnDevice(device.privateKey, epk, wrapped, traceWrapInfo("other", "m", 1)),
    ).rejects.toThrow();
  });
});

describe("float16 conversion", () => {
  it("round-trips float16 values and rounds to nearest", () => {
    for (const h of [0, 0x3c00, 0xbc00, 0x0001, 0x03ff, 0x7bff, 0x3555, 0xc000])
      expect(floatToHalf(halfToFloat(h))).toBe(h);
    expect(halfToFloat(floatToHalf(0.1))).toBeCloseTo(0.1, 3);
    expect(floatToHalf(1e6)).toBe(0x7c00);
  });
});
