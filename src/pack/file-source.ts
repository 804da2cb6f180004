import type { FileHandle } from "node:fs/promises";
import type { ByteSource } from "./onnx/protobuf-read.js";

/** Reads exactly `length` bytes at `position` into `target` (FileHandle.read may return fewer). */
export async function readFully(file: FileHandle, target: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < target.length) {
    const { bytesRead } = await file.read(target, done, target.length - done, position + done);
    if (bytesRead === 0) throw new Error(`unexpected end of file at ${position + done}`);
    done += bytesRead;
  }
}

/** A random-access ByteSource over an open file. */
export function fileSource(file: FileHandle, size: number): ByteSource {
  return {
    size,
    async read(offset, length) {
      const out = new Uint8Array(Math.max(0, Math.min(length, size - offset)));
      await readFully(file, out, offset);
      return out;
    },
  };
}
