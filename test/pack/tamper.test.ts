import { cp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { Manifest } from "../../src/core/manifest.js";
import { shardPath } from "../../src/core/manifest.js";
import { signManifest } from "../../src/core/manifest-jws.js";
import { generateKeyPairJwk } from "../../src/pack/keygen.js";
import { verifyPackage } from "../../src/pack/verify-package.js";
import { makeKeys, packSynthetic, type TestKeys, tempDir } from "../fixtures.js";

let keys: TestKeys;
let dir: string;
let v1: Awaited<ReturnType<typeof packSynthetic>>;
let v2: Awaited<ReturnType<typeof packSynthetic>>;
let copies = 0;

beforeAll(async () => {
  keys = await makeKeys();
  dir = await tempDir();
  v1 = await packSynthetic(dir, keys, { name: "a", bytes: 5 * 65536 + 10, external: true, version: 1 });
  v2 = await packSynthetic(dir, keys, { name: "a", bytes: 5 * 65536 + 10, external: true, version: 2 });
});

async function copyOf(pkg: { outDir: string }): Promise<string> {
  const target = join(dir, `copy-${copies++}`);
  await cp(pkg.outDir, target, { recursive: true });
  return target;
}

const verifyCode = (d: string, full = true) =>
  verifyPackage(d, {
    publisherKeys: [keys.publisher.publicJwk],
    ...(full ? { recipientKey: keys.recipient.privateJwk } : {}),
  }).then(
    () => "accepted",
    (e: { code?: string }) => e.code ?? String(e),
  );

const data = () => v2.manifest.files[1] as Manifest["files"][number];
const shardFile = (d: string, i: number) => join(d, shardPath(data().shards[i] as never));

async function mutate(d: string, i: number, f: (b: Buffer) => Buffer) {
  await writeFile(shardFile(d, i), f(await readFile(shardFile(d, i))));
}

describe("tamper matrix on a packed model", () => {
  it("an untouched package verifies and decrypts", async () => {
    expect(await verifyCode(await copyOf(v2))).toBe("accepted");
  });

  it.each([
    ["first byte", (_b: Buffer) => 0],
    ["middle byte", (b: Buffer) => b.length >> 1],
    ["tag (last byte)", (b: Buffer) => b.length - 1],
  ])("a bit flipped in a shard's %s → digest mismatch", async (_, at) => {
    const d = await copyOf(v2);
    await mutate(d, 2, (b) => {
      const i = at(b);
      b[i] = (b[i] as number) ^ 1;
      return b;
    });
    expect(await verifyCode(d, false)).toBe("ERR_SHARD_DIGEST_MISMATCH");
  });

  it("a truncated or extended shard → size mismatch", async () => {
    const cut = await copyOf(v2);
    await mutate(cut, 1, (b) => b.subarray(0, b.length - 1));
    expect(await verifyCode(cut)).toBe("ERR_SHARD_SIZE_MISMATCH");
    const longer = await copyOf(v2);
    await mutate(longer, 1, (b) => Buffer.concat([b, Buffer.from([0])]));
    expect(await verifyCode(longer)).toBe("ERR_SHARD_SIZE_MISMATCH");
  });

  it("two shard files swapped → digest mismatch", async () => {
    const d = await copyOf(v2);
    await rename(shardFile(d, 0), `${shardFile(d, 0)}.x`);
    await rename(shardFile(d, 1), shardFile(d, 0));
    await rename(`${shardFile(d, 0)}.x`, shardFile(d, 1));
    expect(await verifyCode(d)).toBe("ERR_SHARD_DIGEST_MISMATCH");
  });

  it("a missing shard → shard missing", async () => {
    const d = await copyOf(v2);
    await rm(shardFile(d, 3));
    expect(await verifyCode(d)).toBe("ERR_SHARD_MISSING");
  });

  it("a shard file taken from v1 of the same model → digest mismatch", async () => {
    const d = await copyOf(v2);
    const old = v1.manifest.files[1]?.shards[2];
    await writeFile(shardFile(d, 2), await readFile(join(v1.outDir, shardPath(old as never))));
    expect(await verifyCode(d)).toBe("ERR_SHARD_DIGEST_MISMATCH");
  });

  // The next cases assume the attacker can also re-sign the manifest (a compromised or careless
  // publisher): the AAD alone must still catch every move.
  async function resigned(change: (m: Manifest) => Manifest): Promise<string> {
    const d = await copyOf(v2);
    await writeFile(
      join(d, "manifest.jws"),
      await signManifest(change(structuredClone(v2.manifest)), keys.publisher.privateJwk),
    );
    return d;
  }

  it("shard list reordered (re-signed) → decryption fails", async () => {
    const d = await resigned((m) => {
      const s = (m.files[1] as Manifest["files"][number]).shards;
      const [a, b] = [s[0], s[1]] as [(typeof s)[0], (typeof s)[0]];
      s[0] = { ...b, index: 0 };
      s[1] = { ...a, index: 1 };
      return m;
    });
    expect(await verifyCode(d)).toBe("ERR_SHARD_DECRYPT_FAILED");
  });

  it("a v1 shard listed in the v2 manifest (re-signed, same content key) → decryption fails", async () => {
    // Make v1 and v2 share a content key for this test, the worst case for a careless publisher.
    const d = await copyOf(v1);
    await writeFile(
      join(d, "manifest.jws"),
      await signManifest(
        { ...structuredClone(v1.manifest), model: { id: "synthetic", version: 2 } },
        keys.publisher.privateJwk,
      ),
    );
    expect(await verifyCode(d, false)).toBe("accepted"); // digests still match
    expect(await verifyCode(d)).toBe("ERR_CONTENT_KEY_INVALID"); // the sealed key names v1
  });

  it("graph and external-data shard sets swapped (re-signed) → decryption fails", async () => {
    const d = await resigned((m) => {
      const [g, x] = m.files as [Manifest["files"][number], Manifest["files"][number]];
      m.files = [
        { ...g, shards: g.shards },
        { ...x, location: "renamed.data" },
      ];
      return m;
    });
    expect(await verifyCode(d)).toBe("ERR_SHARD_DECRYPT_FAILED");
  });

  it("a wrong publisher key → key unknown; a wrong recipient key → content key invalid", async () => {
    const stranger = await generateKeyPairJwk("sig");
    const code = await verifyPackage(v2.outDir, { publisherKeys: [stranger.publicJwk] }).catch((e) => e.code);
    expect(code).toBe("ERR_MANIFEST_KEY_UNKNOWN");
    const wrongRecipient = await generateKeyPairJwk("enc");
    const code2 = await verifyPackage(v2.outDir, {
      publisherKeys: [keys.publisher.publicJwk],
      recipientKey: wrongRecipient.privateJwk,
    }).catch((e) => e.code);
    expect(code2).toBe("ERR_CONTENT_KEY_INVALID");
  });

  it("a manifest bit flip on disk → signature invalid", async () => {
    const d = await copyOf(v2);
    const jws = await readFile(join(d, "manifest.jws"), "utf8");
    const [h, p, s] = jws.split(".") as [string, string, string];
    const i = p.length >> 1;
    const flipped = p.slice(0, i) + (p[i] === "A" ? "B" : "A") + p.slice(i + 1);
    await writeFile(join(d, "manifest.jws"), `${h}.${flipped}.${s}`);
    expect(await verifyCode(d)).toMatch(/^ERR_MANIFEST_(SIGNATURE_INVALID|MALFORMED)$/);
  });
});
