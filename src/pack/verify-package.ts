import { mkdir, open, readFile, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { fromBase64Url } from "../core/bytes.js";
import { mapLimit } from "../core/concurrency.js";
import { openContentKey } from "../core/content-key-jwe.js";
import { ModelVaultError } from "../core/errors.js";
import type { EcJwk } from "../core/jwk.js";
import { type Manifest, type ManifestFile, shardContext, shardPath } from "../core/manifest.js";
import { MAX_MANIFEST_BYTES, verifyManifest } from "../core/manifest-jws.js";
import { checkShardBytes } from "../core/shard-check.js";
import { importContentKey, openShard } from "../core/shard-cipher.js";
import { openVariant, packageTraceSecret, verifyVariants } from "./trace/verify-variants.js";

export interface VerifyOptions {
  publisherKeys: EcJwk[];
  /** The recipient's private ECDH key: also decrypt every shard. */
  recipientKey?: EcJwk;
  /**
   * With recipientKey: write the decrypted files here (each staged, then renamed). A traceable
   * package's slots are filled with variant 0 of every slot (the model a device with the all-0
   * codeword assembles): the unmarked slot weights are not in the package.
   */
  extractTo?: string;
  /**
   * A traceable package's trace key file contents (`pack --trace-key-out`): decrypts the slot
   * variants. Without it, the recipient key opens trace-key.jwe instead.
   */
  traceKey?: unknown;
  concurrency?: number;
}

export interface VerifyReport {
  manifest: Manifest;
  publisherKid: string;
  shards: number;
  bytes: number;
  decrypted: boolean;
  /** Traceable packages: slot variants checked (two per slot), and whether they were decrypted. */
  variants?: { checked: number; decrypted: boolean };
  /** Set when an extracted traceable model carries variant 0 in every slot. */
  extractedVariant?: 0;
}

async function readShard(dir: string, file: ManifestFile, index: number): Promise<Uint8Array> {
  const shard = file.shards[index];
  if (!shard) throw new RangeError("shard index");
  const bytes = await readFile(join(dir, shardPath(shard))).catch(() => {
    throw new ModelVaultError(
      "ERR_SHARD_MISSING",
      `shard ${index} of ${file.location} (${shardPath(shard)}) is missing`,
      {
        location: file.location,
        index,
      },
    );
  });
  await checkShardBytes(shard, bytes, file.location);
  return bytes;
}

/**
 * Verifies a packed model directory: the manifest signature against the pinned keys, every
 * shard's length and digest, and with the recipient's key the content key and every shard's
 * decryption. A traceable package's slot variants are checked the same way (decrypted when the
 * trace key or the recipient's key is at hand). Throws the first failure's ModelVaultError.
 */
export async function verifyPackage(dir: string, o: VerifyOptions): Promise<VerifyReport> {
  const manifestPath = join(dir, "manifest.jws");
  const size = await stat(manifestPath).then(
    (s) => s.size,
    () => {
      throw new ModelVaultError("ERR_MANIFEST_MALFORMED", `${manifestPath} is missing`);
    },
  );
  if (size > MAX_MANIFEST_BYTES) throw new ModelVaultError("ERR_MANIFEST_TOO_LARGE");
  const { manifest, publisherKid } = await verifyManifest(
    await readFile(manifestPath, "utf8"),
    o.publisherKeys,
  );
  let key: CryptoKey | undefined;
  if (o.recipientKey) {
    const jwe = await readFile(join(dir, "content-key.jwe"), "utf8").catch(() => {
      throw new ModelVaultError("ERR_CONTENT_KEY_INVALID", "content-key.jwe is missing");
    });
    const envelope = await openContentKey(jwe, o.recipientKey, {
      modelId: manifest.model.id,
      modelVersion: manifest.model.version,
      contentKeyId: manifest.contentKeyId,
    });
    key = await importContentKey(envelope.key);
    envelope.key.fill(0);
  }
  const traced = manifest.trace
    ? (manifest as Manifest & { trace: NonNullable<Manifest["trace"]> })
    : undefined;
  const secret = traced && (await packageTraceSecret(dir, traced, o));
  const variants = traced && {
    checked: await verifyVariants(dir, traced, secret, o.concurrency ?? 4),
    decrypted: secret !== undefined,
  };
  // Plaintext weights: the folder is made if missing, readable by its owner only.
  if (o.extractTo && key) await mkdir(o.extractTo, { recursive: true, mode: 0o700 });
  let shards = 0;
  for (const file of manifest.files) {
    const out =
      o.extractTo && key ? await open(join(o.extractTo, `.${file.location}.partial`), "w", 0o600) : undefined;
    try {
      await mapLimit(file.shards, o.concurrency ?? 4, async (shard) => {
        const ciphertext = await readShard(dir, file, shard.index);
        if (key) {
          const plain = await openShard(
            key,
            fromBase64Url(shard.iv),
            ciphertext,
            shardContext(manifest, file, shard.index),
          );
          await out?.write(plain, 0, plain.length, shard.index * manifest.shardSize);
        }
        shards++;
      });
      if (out && traced && secret)
        for (const [index, slot] of traced.trace.slots.entries()) {
          if (slot.file !== file.location) continue;
          const plain = await openVariant(dir, traced, secret, index, 0);
          await out.write(plain, 0, plain.length, slot.offset);
        }
    } catch (e) {
      await out?.close();
      if (o.extractTo) await rm(join(o.extractTo, `.${file.location}.partial`), { force: true });
      throw e;
    }
    if (out && o.extractTo) {
      await out.close();
      await rename(join(o.extractTo, `.${file.location}.partial`), join(o.extractTo, file.location));
    }
  }
  secret?.fill(0);
  return {
    manifest,
    publisherKid,
    shards,
    bytes: manifest.size,
    decrypted: key !== undefined,
    ...(variants ? { variants } : {}),
    ...(o.extractTo && key && traced ? { extractedVariant: 0 as const } : {}),
  };
}
