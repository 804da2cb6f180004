import { CompactEncrypt, compactDecrypt, importJWK } from "jose";
import { fromBase64Url, fromUtf8, toBase64Url, utf8 } from "./bytes.js";
import { ModelVaultError } from "./errors.js";
import { checkEcJwk, type EcJwk, jwkThumbprint, publicJwk } from "./jwk.js";

export const CONTENT_KEY_ALG = "ECDH-ES+A256KW";
export const CONTENT_KEY_ENC = "A256GCM";
export const CONTENT_KEY_CTY = "modelvault-content-key+json";
/** A traceable package's trace secret (docs/TRACING.md), sealed the same way, bound to the same ids. */
export const TRACE_KEY_CTY = "modelvault-trace-key+json";
type KeyCty = typeof CONTENT_KEY_CTY | typeof TRACE_KEY_CTY;

/** What the packer seals to the license server's registration key. */
export interface ContentKeyEnvelope {
  modelId: string;
  modelVersion: number;
  contentKeyId: string;
  /** The raw 32-byte AES key. */
  key: Uint8Array;
}

/** Seals a content key with JWE ECDH-ES+A256KW / A256GCM to the recipient's P-256 public key. */
export async function sealContentKey(
  envelope: ContentKeyEnvelope,
  recipient: EcJwk,
  cty: KeyCty = CONTENT_KEY_CTY,
): Promise<string> {
  const pub = publicJwk(checkEcJwk(recipient, false, "recipient key", "enc"));
  const key = await importJWK(pub, CONTENT_KEY_ALG);
  const payload = {
    modelId: envelope.modelId,
    modelVersion: envelope.modelVersion,
    contentKeyId: envelope.contentKeyId,
    k: toBase64Url(envelope.key),
  };
  return new CompactEncrypt(utf8(JSON.stringify(payload)))
    .setProtectedHeader({
      alg: CONTENT_KEY_ALG,
      enc: CONTENT_KEY_ENC,
      cty,
      kid: await jwkThumbprint(pub),
    })
    .encrypt(key);
}

/**
 * Opens a sealed content key and checks it belongs to the expected model version and key id.
 * Algorithms are allow-listed, so PBES2 (p2c DoS) and `zip` (decompression bombs) never run.
 */
export async function openContentKey(
  jwe: string,
  recipient: EcJwk,
  expect: { modelId: string; modelVersion: number; contentKeyId: string },
  cty: KeyCty = CONTENT_KEY_CTY,
): Promise<ContentKeyEnvelope> {
  const priv = checkEcJwk(recipient, true, "recipient private key", "enc");
  let envelope: ContentKeyEnvelope;
  try {
    const key = await importJWK(priv, CONTENT_KEY_ALG);
    const { plaintext, protectedHeader } = await compactDecrypt(jwe.trim(), key, {
      keyManagementAlgorithms: [CONTENT_KEY_ALG],
      contentEncryptionAlgorithms: [CONTENT_KEY_ENC],
    });
    if (protectedHeader.cty !== cty || "zip" in protectedHeader) throw new Error("unexpected header");
    const value = JSON.parse(fromUtf8(plaintext)) as Record<string, unknown>;
    const raw = fromBase64Url(String(value.k));
    if (raw.length !== 32) throw new Error("key is not 32 bytes");
    envelope = {
      modelId: String(value.modelId),
      modelVersion: Number(value.modelVersion),
      contentKeyId: String(value.contentKeyId),
      key: raw,
    };
  } catch (cause) {
    throw new ModelVaultError(
      "ERR_CONTENT_KEY_INVALID",
      "content key does not decrypt under this key",
      {},
      { cause },
    );
  }
  if (
    envelope.modelId !== expect.modelId ||
    envelope.modelVersion !== expect.modelVersion ||
    envelope.contentKeyId !== expect.contentKeyId
  ) {
    throw new ModelVaultError(
      "ERR_CONTENT_KEY_INVALID",
      "content key belongs to another model, version or key id",
    );
  }
  return envelope;
}
