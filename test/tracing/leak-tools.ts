/**
 * What a leaking licensee does, and what a leak goes through afterwards. A licensee with a
 * valid credential decrypts the package with its own license (the same Web Crypto steps the
 * worker runs), getting the model its device was given; the leak is then re-saved, noised,
 * renamed or mixed with colluders' copies before it surfaces.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { decodeJwt } from "jose";
import { fromBase64Url } from "../../src/core/bytes.js";
import { cekWrapInfo, unwrapContentKeyOnDevice } from "../../src/core/cek-wrap.js";
import type { LicenseClaims } from "../../src/core/license-token.js";
import { type Manifest, parseManifest, shardContext, shardPath } from "../../src/core/manifest.js";
import { importContentKey, openShard } from "../../src/core/shard-cipher.js";
import { slotKeyBytes } from "../../src/core/tracing/slot-keys.js";
import { variantContext, variantPath } from "../../src/core/tracing/trace-manifest.js";
import { bytesSource, scanFields } from "../../src/pack/onnx/protobuf-read.js";
import { bytesField, message, varintField } from "../../src/pack/onnx/protobuf-write.js";
import { floatToHalf, halfToFloat } from "../../src/pack/onnx/read-initializers.js";
import { unwrapSlotKeys } from "../../worker/slot-keys.js";
import type { Harness, TestDevice } from "../server/harness.js";

export function manifestOf(jws: string): Manifest {
  return parseManifest(JSON.parse(new TextDecoder().decode(fromBase64Url(jws.split(".")[1] as string))));
}

/** The graph file as `device` decrypts it from `dir` with a license it asks for now. */
export async function decryptWithLicense(
  h: Harness,
  device: TestDevice,
  token: string,
  dir: string,
  jws: string,
  digest: string,
): Promise<{ bytes: Uint8Array; claims: LicenseClaims }> {
  const manifest = manifestOf(jws);
  const r = await device.license(h, token, { model: manifest.model, manifestDigest: digest });
  if (r.status !== 201 && r.status !== 200) throw new Error(`license: ${JSON.stringify(r.body)}`);
  const claims = decodeJwt(r.body.license as string) as unknown as LicenseClaims;
  const cek = await unwrapContentKeyOnDevice(
    device.agree.privateKey,
    claims.cek.epk,
    claims.cek.wrapped,
    cekWrapInfo(claims.jti, manifest.model.id, manifest.model.version),
  );
  const file = manifest.files[0] as Manifest["files"][number];
  const out = new Uint8Array(file.size);
  for (const shard of file.shards) {
    const plain = await openShard(
      cek,
      fromBase64Url(shard.iv),
      await readFile(join(dir, shardPath(shard))),
      shardContext(manifest, file, shard.index),
    );
    out.set(plain, shard.index * manifest.shardSize);
  }
  const slots = await unwrapSlotKeys(device.agree.privateKey, claims, manifest);
  for (const [i, slot] of (manifest.trace?.slots ?? []).entries()) {
    const bit = slots?.bits[i] === 1 ? 1 : 0;
    const plain = await openShard(
      slots?.keys[i] as CryptoKey,
      fromBase64Url(slot.variants[bit].iv),
      await readFile(join(dir, variantPath(slot, bit))),
      variantContext(manifest.model, manifest.trace as NonNullable<Manifest["trace"]>, file.size, i, bit),
    );
    out.set(plain, slot.offset);
  }
  return { bytes: out, claims };
}

export interface Tensor {
  name: string;
  dataType: number;
  dims: number[];
  /** float32 values (float16 storage decoded); undefined for non-float tensors, kept as stored. */
  values?: Float32Array;
  raw: Uint8Array;
}

/** The main graph's initializers (raw_data storage), decoded. */
export async function tensorsOf(model: Uint8Array): Promise<Tensor[]> {
  const src = bytesSource(model);
  const out: Tensor[] = [];
  for await (const f of scanFields(src, 0, model.length)) {
    if (f.field !== 7 || f.wire !== 2) continue;
    for await (const g of scanFields(src, f.offset, f.offset + f.length)) {
      if (g.field !== 5 || g.wire !== 2) continue;
      const t: Tensor = { name: "", dataType: 0, dims: [], raw: new Uint8Array() };
      for await (const x of scanFields(src, g.offset, g.offset + g.length)) {
        if (x.field === 1 && x.wire === 0) t.dims.push(Number(x.varint));
        if (x.field === 2) t.dataType = Number(x.varint);
        if (x.field === 8) t.name = new TextDecoder().decode(model.subarray(x.offset, x.offset + x.length));
        if (x.field === 9) t.raw = model.slice(x.offset, x.offset + x.length);
      }
      const view = new DataView(t.raw.buffer, t.raw.byteOffset, t.raw.byteLength);
      if (t.dataType === 1)
        t.values = Float32Array.from({ length: t.raw.length / 4 }, (_, i) => view.getFloat32(i * 4, true));
      if (t.dataType === 10)
        t.values = Float32Array.from({ length: t.raw.length / 2 }, (_, i) =>
          halfToFloat(view.getUint16(i * 2, true)),
        );
      out.push(t);
    }
  }
  return out;
}

/**
 * Re-serializes a model through the ONNX protobuf: every field re-encoded, initializers
 * renamed (nodes and inputs follow), reordered, their values transformed and optionally stored
 * as float16.
 */
export async function reserialize(
  model: Uint8Array,
  o: {
    rename?: (name: string) => string;
    reverse?: boolean;
    values?: (t: Tensor) => Float32Array | undefined;
    float16?: boolean;
    /** Initializers added after the others (float32), e.g. a decoy under a marked tensor's name. */
    extra?: { name: string; dims: number[]; values: Float32Array }[];
  },
): Promise<Uint8Array> {
  const src = bytesSource(model);
  const tensors = await tensorsOf(model);
  const rename = o.rename ?? ((n: string) => n);
  const names = new Set(tensors.map((t) => t.name));
  const text = (x: { offset: number; length: number }) =>
    new TextDecoder().decode(model.subarray(x.offset, x.offset + x.length));
  const reencode = async (start: number, end: number, strings: number[]): Promise<Uint8Array> => {
    const parts: Uint8Array[] = [];
    for await (const x of scanFields(src, start, end)) {
      if (x.wire === 0) parts.push(varintField(x.field, x.varint));
      else if (x.wire === 2 && strings.includes(x.field) && names.has(text(x)))
        parts.push(bytesField(x.field, new TextEncoder().encode(rename(text(x)))));
      else parts.push(bytesField(x.field, model.subarray(x.offset, x.offset + x.length)));
    }
    return message(parts);
  };
  const inits = tensors.map((t) => {
    const values = t.values ? (o.values?.(t) ?? t.values) : undefined;
    const half = o.float16 && values;
    let raw = t.raw;
    if (values) {
      raw = new Uint8Array(values.length * (half ? 2 : 4));
      const view = new DataView(raw.buffer);
      for (const [i, v] of values.entries()) {
        if (half) view.setUint16(i * 2, floatToHalf(v), true);
        else view.setFloat32(i * 4, v, true);
      }
    }
    return bytesField(
      5,
      message(
        t.dims.map((d) => varintField(1, d)),
        varintField(2, half ? 10 : t.dataType),
        bytesField(8, new TextEncoder().encode(rename(t.name))),
        bytesField(9, raw),
      ),
    );
  });
  for (const x of o.extra ?? [])
    inits.push(
      bytesField(
        5,
        message(
          x.dims.map((d) => varintField(1, d)),
          varintField(2, 1),
          bytesField(8, new TextEncoder().encode(x.name)),
          bytesField(9, new Uint8Array(x.values.buffer, x.values.byteOffset, x.values.byteLength)),
        ),
      ),
    );
  if (o.reverse) inits.reverse();
  const top: Uint8Array[] = [];
  for await (const f of scanFields(src, 0, model.length)) {
    if (f.field !== 7 || f.wire !== 2) {
      top.push(
        f.wire === 0
          ? varintField(f.field, f.varint)
          : bytesField(f.field, model.subarray(f.offset, f.offset + f.length)),
      );
      continue;
    }
    const graph: Uint8Array[] = [];
    for await (const g of scanFields(src, f.offset, f.offset + f.length)) {
      if (g.field === 5) continue;
      if (g.field === 1) graph.push(bytesField(1, await reencode(g.offset, g.offset + g.length, [1])));
      else if (g.field === 11) graph.push(bytesField(11, await reencode(g.offset, g.offset + g.length, [1])));
      else
        graph.push(
          g.wire === 0
            ? varintField(g.field, g.varint)
            : bytesField(g.field, model.subarray(g.offset, g.offset + g.length)),
        );
    }
    top.push(bytesField(7, message(graph, inits)));
  }
  return message(top);
}

/** A seeded standard normal (Box–Muller over the caller's uniform generator). */
export function gaussian(random: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random());
}

/** The publisher's trace secret from the file `pack --trace-key-out` wrote. */
export async function traceSecretOf(file: string): Promise<Uint8Array> {
  return fromBase64Url((JSON.parse(await readFile(file, "utf8")) as { k: string }).k);
}

/**
 * The copy a device with codeword `bits` gets, built by the publisher from the original and
 * both variants of every slot (decrypted with keys derived from the trace secret).
 */
export async function assembleFor(
  dir: string,
  manifest: Manifest,
  secret: Uint8Array,
  bits: ArrayLike<number>,
  original: Uint8Array,
): Promise<Uint8Array> {
  const out = original.slice();
  const trace = manifest.trace as NonNullable<Manifest["trace"]>;
  const fileSize = (manifest.files[0] as Manifest["files"][number]).size;
  for (const [i, slot] of trace.slots.entries()) {
    const bit = bits[i] === 1 ? 1 : 0;
    const key = await importContentKey(await slotKeyBytes(secret, manifest.model, i, bit));
    const plain = await openShard(
      key,
      fromBase64Url(slot.variants[bit].iv),
      await readFile(join(dir, variantPath(slot, bit))),
      variantContext(manifest.model, trace, fileSize, i, bit),
    );
    out.set(plain, slot.offset);
  }
  return out;
}
