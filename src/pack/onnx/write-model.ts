import { asBytes, concatBytes } from "../../core/bytes.js";
import {
  bytesField,
  floatField,
  lengthDelimitedHeader,
  message,
  stringField,
  varintField,
} from "./protobuf-write.js";

/** A dense initializer, stored inline, in an external-data file, or streamed by the caller. */
export interface OnnxInitializer {
  name: string;
  dataType: number;
  dims: number[];
  /** Inline bytes (little-endian). */
  data?: ArrayBufferView;
  /** Stored in an external-data file instead (ONNX "external data" convention). */
  external?: { location: string; offset: number; length: number };
}

export interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
  attributes?: Record<string, number | number[] | string | { float: number }>;
}

export interface OnnxValueInfo {
  name: string;
  dataType: number;
  shape: (number | string)[];
}

export interface OnnxGraph {
  name: string;
  nodes: OnnxNode[];
  initializers: OnnxInitializer[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  opset?: number;
  docString?: string;
}

const ATTRIBUTE_TYPE = { FLOAT: 1, INT: 2, STRING: 3, INTS: 7 };

function attribute(name: string, value: NonNullable<OnnxNode["attributes"]>[string]): Uint8Array {
  if (typeof value === "string") {
    return message(stringField(1, name), stringField(4, value), varintField(20, ATTRIBUTE_TYPE.STRING));
  }
  if (typeof value === "number") {
    return message(stringField(1, name), varintField(3, value), varintField(20, ATTRIBUTE_TYPE.INT));
  }
  if (Array.isArray(value)) {
    return message(
      stringField(1, name),
      value.map((v) => varintField(8, v)),
      varintField(20, ATTRIBUTE_TYPE.INTS),
    );
  }
  return message(stringField(1, name), floatField(2, value.float), varintField(20, ATTRIBUTE_TYPE.FLOAT));
}

function node(n: OnnxNode, index: number): Uint8Array {
  return message(
    n.inputs.map((i) => stringField(1, i)),
    n.outputs.map((o) => stringField(2, o)),
    stringField(3, `${n.op}_${index}`),
    stringField(4, n.op),
    Object.entries(n.attributes ?? {}).map(([k, v]) => bytesField(5, attribute(k, v))),
  );
}

/** TensorProto fields except raw_data, which always comes last so it can be streamed. */
function tensorHead(t: OnnxInitializer): Uint8Array {
  const fields = [
    ...t.dims.map((d) => varintField(1, d)),
    varintField(2, t.dataType),
    stringField(8, t.name),
  ];
  if (t.external) {
    const entry = (k: string, v: string) => bytesField(13, message(stringField(1, k), stringField(2, v)));
    fields.push(
      entry("location", t.external.location),
      entry("offset", String(t.external.offset)),
      entry("length", String(t.external.length)),
      varintField(14, 1),
    );
  }
  return message(fields);
}

function valueInfo(v: OnnxValueInfo): Uint8Array {
  const dims = v.shape.map((d) =>
    bytesField(1, typeof d === "number" ? varintField(1, d) : stringField(2, d)),
  );
  const tensorType = message(varintField(1, v.dataType), bytesField(2, message(dims)));
  return message(stringField(1, v.name), bytesField(2, bytesField(1, tensorType)));
}

/**
 * Encodes a ModelProto. When `streamed` names an initializer, its raw_data payload is left out:
 * the returned bytes are the file up to that payload, and the caller writes `streamed.length`
 * bytes after them (ModelProto → graph → that initializer → raw_data all end together).
 */
export function encodeModel(graph: OnnxGraph, streamed?: { name: string; length: number }): Uint8Array {
  const inits = graph.initializers.filter((t) => t.name !== streamed?.name);
  const last = graph.initializers.find((t) => t.name === streamed?.name);
  const graphBody = message(
    graph.nodes.map((n, i) => bytesField(1, node(n, i))),
    stringField(2, graph.name),
    inits.map((t) =>
      bytesField(5, t.data ? message(tensorHead(t), bytesField(9, asBytes(t.data))) : tensorHead(t)),
    ),
    graph.docString ? stringField(10, graph.docString) : new Uint8Array(),
    graph.inputs.map((v) => bytesField(11, valueInfo(v))),
    graph.outputs.map((v) => bytesField(12, valueInfo(v))),
  );
  const opset = bytesField(8, message(stringField(1, ""), varintField(2, graph.opset ?? 17)));
  const modelHead = message(varintField(1, 8), stringField(2, "modelvault"), stringField(3, "0.1"), opset);
  if (!last || !streamed) return message(modelHead, bytesField(7, graphBody));
  const tHead = concatBytes([tensorHead(last), lengthDelimitedHeader(9, streamed.length)]);
  const tensorLength = tHead.length + streamed.length;
  const initHead = lengthDelimitedHeader(5, tensorLength);
  const graphLength = graphBody.length + initHead.length + tensorLength;
  return message(modelHead, lengthDelimitedHeader(7, graphLength), graphBody, initHead, tHead);
}
