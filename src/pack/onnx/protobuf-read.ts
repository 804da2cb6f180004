/**
 * A protobuf field scanner over random-access bytes. Length-delimited fields are reported by
 * offset and length and never read unless asked, so a 2 GB tensor inside the graph costs nothing.
 */

/** Random-access bytes: a file handle in Node, a Uint8Array in tests. */
export interface ByteSource {
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
}

export class ProtobufError extends Error {}

export interface ScannedField {
  field: number;
  wire: 0 | 1 | 2 | 5;
  /** The value of a varint field. */
  varint: bigint;
  /** Where the payload of a length-delimited (or fixed) field starts, and its length. */
  offset: number;
  length: number;
}

const WINDOW = 64 * 1024;

/** Caches one window of the source so scanning many small fields is not one read each. */
export class BufferedSource implements ByteSource {
  private start = 0;
  private window: Uint8Array = new Uint8Array(0);
  constructor(private readonly inner: ByteSource) {}
  get size(): number {
    return this.inner.size;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    if (offset >= this.start && offset + length <= this.start + this.window.length) {
      return this.window.subarray(offset - this.start, offset - this.start + length);
    }
    if (length > WINDOW) return this.inner.read(offset, length);
    this.start = offset;
    this.window = await this.inner.read(offset, Math.min(WINDOW, this.inner.size - offset));
    return this.window.subarray(0, Math.min(length, this.window.length));
  }
}

export function bytesSource(bytes: Uint8Array): ByteSource {
  return { size: bytes.length, read: async (o, l) => bytes.subarray(o, o + l) };
}

function readVarint(bytes: Uint8Array, at: number): { value: bigint; next: number } {
  let value = 0n;
  for (let i = 0; i < 10; i++) {
    const b = bytes[at + i];
    if (b === undefined) throw new ProtobufError("truncated varint");
    value |= BigInt(b & 0x7f) << BigInt(7 * i);
    if ((b & 0x80) === 0) return { value, next: at + i + 1 };
  }
  throw new ProtobufError("varint longer than 10 bytes");
}

/** Yields the fields of the message occupying [start, end) of `src`. */
export async function* scanFields(src: ByteSource, start: number, end: number): AsyncGenerator<ScannedField> {
  if (end > src.size) throw new ProtobufError("message runs past the end of the file");
  let pos = start;
  while (pos < end) {
    const head = await src.read(pos, Math.min(20, end - pos));
    const k = readVarint(head, 0);
    const field = Number(k.value >> 3n);
    const wire = Number(k.value & 7n);
    if (field < 1) throw new ProtobufError("field number 0");
    let at = k.next;
    let out: ScannedField;
    if (wire === 0) {
      const v = readVarint(head, at);
      out = { field, wire, varint: v.value, offset: pos + at, length: v.next - at };
      at = v.next;
    } else if (wire === 2) {
      const v = readVarint(head, at);
      const length = Number(v.value);
      at = v.next;
      out = { field, wire, varint: 0n, offset: pos + at, length };
      at += length;
    } else if (wire === 1 || wire === 5) {
      const length = wire === 1 ? 8 : 4;
      out = { field, wire, varint: 0n, offset: pos + at, length };
      at += length;
    } else {
      throw new ProtobufError(`unsupported wire type ${wire}`);
    }
    pos += at;
    if (pos > end) throw new ProtobufError("field runs past the end of its message");
    yield out;
  }
}
