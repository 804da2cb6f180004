import { fromUtf8 } from "../../core/bytes.js";
import { BufferedSource, type ByteSource, ProtobufError, scanFields } from "./protobuf-read.js";

/** Where an initializer's values are stored, read without loading them. */
export interface InitializerPlace {
  name: string;
  /** ONNX TensorProto.DataType (element-types.ts). */
  dataType: number;
  dims: number[];
  /**
   * The bytes of the values: in the graph file (`file` null) as raw_data or as packed
   * float_data, or in an external-data file. Undefined for encodings we do not read (typed
   * repeated fields other than float_data, strings, segments).
   */
  data?: { file: string | null; offset: number; length: number; encoding: "raw" | "float_data" };
}

// Field numbers from onnx/onnx.proto.
const MODEL_GRAPH = 7;
const GRAPH_INITIALIZER = 5;
const TENSOR = {
  dims: 1,
  dataType: 2,
  floatData: 4,
  name: 8,
  rawData: 9,
  externalData: 13,
  dataLocation: 14,
};
// Bytes per element of every fixed-size TensorProto.DataType (strings have none).
const ELEMENT_BYTES: Record<number, number> = {
  1: 4,
  2: 1,
  3: 1,
  4: 2,
  5: 2,
  6: 4,
  7: 8,
  9: 1,
  10: 2,
  11: 8,
  12: 4,
  13: 8,
  14: 8,
  15: 16,
  16: 2,
};

async function text(src: ByteSource, offset: number, length: number): Promise<string> {
  if (length > 4096) throw new ProtobufError("string field too long");
  return fromUtf8(await src.read(offset, length));
}

async function readPackedVarints(src: ByteSource, offset: number, length: number): Promise<number[]> {
  const bytes = await src.read(offset, length);
  const out: number[] = [];
  let value = 0n;
  let shift = 0n;
  for (const b of bytes) {
    value |= BigInt(b & 0x7f) << shift;
    shift += 7n;
    if ((b & 0x80) === 0) {
      out.push(Number(BigInt.asIntN(64, value)));
      value = 0n;
      shift = 0n;
    }
  }
  return out;
}

async function readInitializer(src: ByteSource, offset: number, length: number): Promise<InitializerPlace> {
  const place: InitializerPlace = { name: "", dataType: 0, dims: [] };
  let external = false;
  const entries = new Map<string, string>();
  for await (const f of scanFields(src, offset, offset + length)) {
    if (f.field === TENSOR.dims && f.wire === 0) place.dims.push(Number(BigInt.asIntN(64, f.varint)));
    if (f.field === TENSOR.dims && f.wire === 2)
      place.dims.push(...(await readPackedVarints(src, f.offset, f.length)));
    if (f.field === TENSOR.dataType && f.wire === 0) place.dataType = Number(f.varint);
    if (f.field === TENSOR.name && f.wire === 2) place.name = await text(src, f.offset, f.length);
    if (f.field === TENSOR.rawData && f.wire === 2)
      place.data = { file: null, offset: f.offset, length: f.length, encoding: "raw" };
    if (f.field === TENSOR.floatData && f.wire === 2)
      place.data = { file: null, offset: f.offset, length: f.length, encoding: "float_data" };
    if (f.field === TENSOR.dataLocation && f.wire === 0) external = Number(f.varint) === 1;
    if (f.field === TENSOR.externalData && f.wire === 2) {
      let k = "";
      let v = "";
      for await (const e of scanFields(src, f.offset, f.offset + f.length)) {
        if (e.field === 1 && e.wire === 2) k = await text(src, e.offset, e.length);
        if (e.field === 2 && e.wire === 2) v = await text(src, e.offset, e.length);
      }
      entries.set(k, v);
    }
  }
  if (external) {
    const count = place.dims.reduce((n, d) => n * d, 1);
    const start = Number(entries.get("offset") ?? 0);
    const bytes = ELEMENT_BYTES[place.dataType];
    const size = entries.has("length") ? Number(entries.get("length")) : bytes ? count * bytes : Number.NaN;
    const location = entries.get("location");
    if (location && Number.isSafeInteger(start) && Number.isSafeInteger(size))
      place.data = { file: location, offset: start, length: size, encoding: "raw" };
    else place.data = undefined;
  }
  return place;
}

/**
 * Lists the initializers of a model's main graph with where their values are stored (nested
 * graphs of If/Loop and Constant nodes are not listed). Throws ProtobufError when the bytes are
 * not a plausible ModelProto.
 */
export async function readInitializers(source: ByteSource): Promise<InitializerPlace[]> {
  const src = new BufferedSource(source);
  let graph: { offset: number; length: number } | undefined;
  for await (const f of scanFields(src, 0, src.size)) if (f.field === MODEL_GRAPH && f.wire === 2) graph = f;
  if (!graph) throw new ProtobufError("no graph");
  const out: InitializerPlace[] = [];
  for await (const f of scanFields(src, graph.offset, graph.offset + graph.length))
    if (f.field === GRAPH_INITIALIZER && f.wire === 2)
      out.push(await readInitializer(src, f.offset, f.length));
  return out;
}

/** Element count of an initializer. */
export function elementCount(place: InitializerPlace): number {
  return place.dims.reduce((n, d) => n * d, 1);
}

/** float16 bits to a number (IEEE 754 binary16). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/** A number to the nearest float16 bits (round half to even). */
export function floatToHalf(value: number): number {
  const f32 = new Float32Array([value]);
  const bits = new Uint32Array(f32.buffer)[0] as number;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = ((bits >>> 23) & 0xff) - 127 + 15;
  let mantissa = bits & 0x7fffff;
  if (((bits >>> 23) & 0xff) === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  if (exponent >= 31) return sign | 0x7c00;
  if (exponent <= 0) {
    if (exponent < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - exponent;
    const half = mantissa >> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (rest > mid || (rest === mid && half & 1) ? half + 1 : half);
  }
  const half = (exponent << 10) | (mantissa >> 13);
  const rest = mantissa & 0x1fff;
  return sign | (rest > 0x1000 || (rest === 0x1000 && half & 1) ? half + 1 : half);
}

/**
 * The values of a float initializer as float32 (float32, float16 and float64 storage), given its
 * stored bytes (what `data` points at). Undefined for other element types.
 */
export function decodeFloats(place: InitializerPlace, bytes: Uint8Array): Float32Array | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (place.data?.encoding === "float_data" || place.dataType === 1) {
    return Float32Array.from({ length: bytes.length >> 2 }, (_, i) => view.getFloat32(i * 4, true));
  }
  if (place.dataType === 10)
    return Float32Array.from({ length: bytes.length >> 1 }, (_, i) =>
      halfToFloat(view.getUint16(i * 2, true)),
    );
  if (place.dataType === 11)
    return Float32Array.from({ length: bytes.length >> 3 }, (_, i) => view.getFloat64(i * 8, true));
  return undefined;
}
