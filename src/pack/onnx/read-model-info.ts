import { fromUtf8 } from "../../core/bytes.js";
import type { TensorInfo } from "../../core/manifest.js";
import { ONNX_ELEMENT_TYPES } from "./element-types.js";
import { BufferedSource, type ByteSource, ProtobufError, scanFields } from "./protobuf-read.js";

/** What the packer needs to know about an ONNX model, read without loading its weights. */
export interface OnnxModelInfo {
  irVersion: number;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  /** External-data files referenced by initializers, with the furthest byte each one needs. */
  externalData: { location: string; requiredBytes: number }[];
}

// Field numbers from onnx/onnx.proto.
const MODEL = { irVersion: 1, graph: 7, opsetImport: 8 };
const GRAPH = { initializer: 5, input: 11, output: 12 };
const TENSOR = { name: 8, externalData: 13, dataLocation: 14 };
const EXTERNAL = 1;

async function text(src: ByteSource, offset: number, length: number): Promise<string> {
  if (length > 4096) throw new ProtobufError("string field too long");
  return fromUtf8(await src.read(offset, length));
}

async function readShape(
  src: ByteSource,
  offset: number,
  length: number,
): Promise<(number | string | null)[]> {
  const dims: (number | string | null)[] = [];
  for await (const dim of scanFields(src, offset, offset + length)) {
    if (dim.field !== 1 || dim.wire !== 2) continue;
    let value: number | string | null = null;
    for await (const f of scanFields(src, dim.offset, dim.offset + dim.length)) {
      if (f.field === 1 && f.wire === 0) value = Number(BigInt.asIntN(64, f.varint));
      if (f.field === 2 && f.wire === 2) value = await text(src, f.offset, f.length);
    }
    dims.push(value);
  }
  return dims;
}

async function readValueInfo(src: ByteSource, offset: number, length: number): Promise<TensorInfo> {
  const info: TensorInfo = { name: "", type: "unknown", shape: [] };
  for await (const f of scanFields(src, offset, offset + length)) {
    if (f.field === 1 && f.wire === 2) info.name = await text(src, f.offset, f.length);
    if (f.field !== 2 || f.wire !== 2) continue;
    for await (const t of scanFields(src, f.offset, f.offset + f.length)) {
      if (t.field !== 1 || t.wire !== 2) continue; // only tensor_type; sequences/maps stay "unknown"
      for await (const tt of scanFields(src, t.offset, t.offset + t.length)) {
        if (tt.field === 1 && tt.wire === 0) info.type = ONNX_ELEMENT_TYPES[Number(tt.varint)] ?? "unknown";
        if (tt.field === 2 && tt.wire === 2) info.shape = await readShape(src, tt.offset, tt.length);
      }
    }
  }
  return info;
}

/** Returns the name, and for external tensors the location and end offset, of one TensorProto. */
async function readInitializer(src: ByteSource, offset: number, length: number) {
  let name = "";
  let external = false;
  const entries = new Map<string, string>();
  for await (const f of scanFields(src, offset, offset + length)) {
    if (f.field === TENSOR.name && f.wire === 2) name = await text(src, f.offset, f.length);
    if (f.field === TENSOR.dataLocation && f.wire === 0) external = Number(f.varint) === EXTERNAL;
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
  if (!external) return { name };
  const location = entries.get("location") ?? "";
  const end = Number(entries.get("offset") ?? 0) + Number(entries.get("length") ?? 0);
  return { name, location, end: Number.isFinite(end) ? end : Number.NaN };
}

/**
 * Reads the model's signature and external-data references. Throws ProtobufError when the
 * bytes are not a plausible ModelProto (callers turn that into ERR_PACK_NOT_ONNX).
 */
export async function readModelInfo(source: ByteSource): Promise<OnnxModelInfo> {
  const src = new BufferedSource(source);
  let irVersion = 0;
  let opsets = 0;
  let graph: { offset: number; length: number } | undefined;
  for await (const f of scanFields(src, 0, src.size)) {
    if (f.field === MODEL.irVersion && f.wire === 0) irVersion = Number(f.varint);
    if (f.field === MODEL.opsetImport && f.wire === 2) opsets++;
    if (f.field === MODEL.graph && f.wire === 2) graph = f;
  }
  if (irVersion < 3 || irVersion > 64 || opsets === 0 || !graph) {
    throw new ProtobufError("missing ir_version, opset_import or graph");
  }
  const inputs: TensorInfo[] = [];
  const outputs: TensorInfo[] = [];
  const initializers = new Set<string>();
  const external = new Map<string, number>();
  for await (const f of scanFields(src, graph.offset, graph.offset + graph.length)) {
    if (f.wire !== 2) continue;
    if (f.field === GRAPH.input) inputs.push(await readValueInfo(src, f.offset, f.length));
    if (f.field === GRAPH.output) outputs.push(await readValueInfo(src, f.offset, f.length));
    if (f.field === GRAPH.initializer) {
      const init = await readInitializer(src, f.offset, f.length);
      initializers.add(init.name);
      if (init.location !== undefined) {
        external.set(init.location, Math.max(external.get(init.location) ?? 0, init.end));
      }
    }
  }
  if (outputs.length === 0) throw new ProtobufError("graph has no outputs");
  return {
    irVersion,
    // IR < 4 lists initializers among the inputs; they are weights, not feeds.
    inputs: inputs.filter((i) => !initializers.has(i.name)),
    outputs,
    externalData: [...external].map(([location, requiredBytes]) => ({ location, requiredBytes })),
  };
}
