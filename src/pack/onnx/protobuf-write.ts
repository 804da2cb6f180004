/**
 * The few protobuf encoders ONNX needs (https://protobuf.dev/programming-guides/encoding/).
 * Small messages are built as byte arrays; huge tensors are streamed by the callers.
 */
import { concatBytes, utf8 } from "../../core/bytes.js";

export function varint(value: number | bigint): Uint8Array {
  // int64 fields encode negatives as 10-byte two's complement.
  let n = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  while (n >= 0x80n) {
    out.push(Number(n & 0x7fn) | 0x80);
    n >>= 7n;
  }
  out.push(Number(n));
  return Uint8Array.from(out);
}

const key = (field: number, wire: number) => varint((field << 3) | wire);

export function varintField(field: number, value: number | bigint): Uint8Array {
  return concatBytes([key(field, 0), varint(value)]);
}

/** Length prefix and key of a length-delimited field, without its payload (for streaming). */
export function lengthDelimitedHeader(field: number, length: number): Uint8Array {
  return concatBytes([key(field, 2), varint(length)]);
}

export function bytesField(field: number, payload: Uint8Array): Uint8Array {
  return concatBytes([lengthDelimitedHeader(field, payload.length), payload]);
}

export function stringField(field: number, text: string): Uint8Array {
  return bytesField(field, utf8(text));
}

export function floatField(field: number, value: number): Uint8Array {
  const out = new Uint8Array(5);
  out.set(key(field, 5));
  new DataView(out.buffer).setFloat32(1, value, true);
  return out;
}

/** Concatenates encoded fields into one message body. */
export function message(...fields: (Uint8Array | readonly Uint8Array[])[]): Uint8Array {
  return concatBytes(fields.flat());
}
