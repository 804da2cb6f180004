import { describe, expect, it } from "vitest";
import { toHex } from "../../src/core/bytes.js";
import type { ShardContext } from "../../src/core/shard-aad.js";
import { shardAad } from "../../src/core/shard-aad.js";
import { importContentKey, openShard, TAG_BYTES } from "../../src/core/shard-cipher.js";
import { sealShardNode } from "../../src/pack/seal-shard-node.js";

const ctx: ShardContext = {
  modelId: "digits",
  modelVersion: 2,
  location: "model.onnx",
  fileSize: 300_000,
  shardIndex: 1,
  shardCount: 5,
  plaintextSize: 1000,
};
/** A fresh content key: its raw bytes (the packer's sealer takes them) and the reader's CryptoKey. */
async function contentKey() {
  const raw = crypto.getRandomValues(new Uint8Array(32));
  return { raw, key: await importContentKey(raw) };
}
/** Seals with the packer's sealer (the one that ships) and joins ciphertext and tag as on disk. */
function seal(raw: Uint8Array, plaintext: Uint8Array, c: ShardContext) {
  const sealed = sealShardNode(raw, plaintext, c);
  return { iv: sealed.iv, ciphertext: new Uint8Array(Buffer.concat(sealed.parts)) };
}
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => "accepted",
    (e: { code?: string }) => e.code ?? String(e),
  );

describe("shard sealing (AES-256-GCM with bound AAD)", () => {
  it("round-trips and appends exactly a 128-bit tag", async () => {
    const { raw, key } = await contentKey();
    const plain = crypto.getRandomValues(new Uint8Array(1000));
    const { iv, ciphertext } = seal(raw, plain, ctx);
    expect(iv.length).toBe(12);
    expect(ciphertext.length).toBe(1000 + TAG_BYTES);
    expect(await openShard(key, iv, ciphertext, ctx)).toEqual(plain);
  });

  it.each(Object.keys(ctx) as (keyof ShardContext)[])(
    "fails when the AAD field %s differs",
    async (field) => {
      const { raw, key } = await contentKey();
      const { iv, ciphertext } = seal(raw, new Uint8Array(1000), ctx);
      const value = ctx[field];
      // plaintextSize also changes the expected length; decryption must still fail closed.
      const moved = { ...ctx, [field]: typeof value === "number" ? value + 1 : `${value}x` };
      expect(await codeOf(openShard(key, iv, ciphertext, moved))).toBe("ERR_SHARD_DECRYPT_FAILED");
    },
  );

  it("encodes AAD unambiguously (length-prefixed, no delimiter collisions)", () => {
    const a = shardAad({ ...ctx, modelId: "ab", location: "c" });
    const b = shardAad({ ...ctx, modelId: "a", location: "bc" });
    expect(toHex(a)).not.toBe(toHex(b));
  });

  it("fails closed on a flipped bit in the IV, the body or the tag, and on a wrong key", async () => {
    const { raw, key } = await contentKey();
    const { iv, ciphertext } = seal(raw, new Uint8Array(1000).fill(7), ctx);
    const flip = (bytes: Uint8Array, i: number) => {
      const c = Uint8Array.from(bytes);
      c[i] = (c[i] as number) ^ 0x80;
      return c;
    };
    expect(await codeOf(openShard(key, flip(iv, 11), ciphertext, ctx))).toBe("ERR_SHARD_DECRYPT_FAILED");
    for (const i of [0, 500, ciphertext.length - 1]) {
      expect(await codeOf(openShard(key, iv, flip(ciphertext, i), ctx))).toBe("ERR_SHARD_DECRYPT_FAILED");
    }
    const other = await importContentKey(crypto.getRandomValues(new Uint8Array(32)));
    expect(await codeOf(openShard(other, iv, ciphertext, ctx))).toBe("ERR_SHARD_DECRYPT_FAILED");
  });

  it("refuses truncated tags before decrypting (tag length pinned at 128 bits)", async () => {
    const { raw, key } = await contentKey();
    const { iv, ciphertext } = seal(raw, new Uint8Array(1000), ctx);
    for (const cut of [1, 4, 8, 12, 16]) {
      expect(await codeOf(openShard(key, iv, ciphertext.subarray(0, ciphertext.length - cut), ctx))).toBe(
        "ERR_SHARD_DECRYPT_FAILED",
      );
    }
  });

  it("refuses an IV that is not 96 bits, or a size the context does not declare, even when the shard authenticates", async () => {
    // Whoever holds the key can make both (a buggy or hostile packer): the format pins 12-byte
    // IVs (others go through GHASH, SP 800-38D §8.2) and each shard's size is the manifest's.
    const { raw, key } = await contentKey();
    const iv = crypto.getRandomValues(new Uint8Array(16));
    const params = { name: "AES-GCM", iv, additionalData: shardAad(ctx), tagLength: 128 };
    const encryptKey = await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt"]);
    const longIv = new Uint8Array(await crypto.subtle.encrypt(params, encryptKey, new Uint8Array(1000)));
    expect(await codeOf(openShard(key, iv, longIv, ctx))).toBe("ERR_SHARD_DECRYPT_FAILED");
    const short = seal(raw, new Uint8Array(999), ctx); // sealed under a size it does not have
    expect(await codeOf(openShard(key, short.iv, short.ciphertext, ctx))).toBe("ERR_SHARD_DECRYPT_FAILED");
  });

  it("content keys imported for use are not extractable", async () => {
    const key = await importContentKey(new Uint8Array(32));
    expect(key.extractable).toBe(false);
    await expect(crypto.subtle.exportKey("raw", key)).rejects.toThrow();
  });
});
