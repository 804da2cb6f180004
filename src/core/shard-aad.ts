import { utf8 } from "./bytes.js";

/** The fields a shard's AES-GCM additional data binds (docs/FORMAT.md, "Shard AAD"). */
export interface ShardContext {
  modelId: string;
  modelVersion: number;
  /** The file this shard belongs to: "model.onnx" or an external-data location. */
  location: string;
  /** Total plaintext size of that file. */
  fileSize: number;
  shardIndex: number;
  shardCount: number;
  /** Plaintext size of this shard. */
  plaintextSize: number;
}

export const FORMAT_VERSION = 1;
const MAGIC = utf8("MVSHARD");

/**
 * Encodes the AAD as a fixed, length-prefixed binary layout, so no two different contexts can
 * produce the same bytes (unlike a delimiter-joined string, where "a|b" + "c" = "a" + "b|c").
 */
export function shardAad(ctx: ShardContext): Uint8Array<ArrayBuffer> {
  const id = utf8(ctx.modelId);
  const location = utf8(ctx.location);
  const out = new Uint8Array(MAGIC.length + 1 + 2 + id.length + 4 + 2 + location.length + 8 + 4 + 4 + 8);
  const view = new DataView(out.buffer);
  let o = 0;
  out.set(MAGIC, o);
  o += MAGIC.length;
  view.setUint8(o, FORMAT_VERSION);
  o += 1;
  view.setUint16(o, id.length);
  o += 2;
  out.set(id, o);
  o += id.length;
  view.setUint32(o, ctx.modelVersion);
  o += 4;
  view.setUint16(o, location.length);
  o += 2;
  out.set(location, o);
  o += location.length;
  view.setBigUint64(o, BigInt(ctx.fileSize));
  o += 8;
  view.setUint32(o, ctx.shardIndex);
  o += 4;
  view.setUint32(o, ctx.shardCount);
  o += 4;
  view.setBigUint64(o, BigInt(ctx.plaintextSize));
  return out;
}
