import { asBytes, concatBytes, fromBase64Url, toBase64Url, utf8 } from "../../core/bytes.js";

/**
 * Encrypts content keys at rest. Shaped like a cloud KMS (Encrypt/Decrypt with an encryption
 * context bound as AAD), so a KMS-backed implementation can replace the local one.
 */
export interface KeyEncryptionKey {
  /** Identifies the key version; stored with every ciphertext for rotation. */
  readonly id: string;
  encrypt(plaintext: Uint8Array, context: string): Promise<string>;
  decrypt(ciphertext: string, context: string): Promise<Uint8Array>;
}

/** A local AES-256-GCM KEK from 32 key bytes (a 0600 file or an environment variable). */
export class LocalKek implements KeyEncryptionKey {
  private constructor(
    readonly id: string,
    private readonly key: CryptoKey,
  ) {}

  static async fromBytes(id: string, raw: Uint8Array): Promise<LocalKek> {
    if (raw.length !== 32) throw new Error("KEK must be 32 bytes");
    const key = await crypto.subtle.importKey("raw", asBytes(raw), "AES-GCM", false, ["encrypt", "decrypt"]);
    return new LocalKek(id, key);
  }

  async encrypt(plaintext: Uint8Array, context: string): Promise<string> {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const ct = await crypto.subtle.encrypt(
      { name: "AES-GCM", iv, additionalData: asBytes(utf8(context)) },
      this.key,
      asBytes(plaintext),
    );
    return toBase64Url(concatBytes([iv, new Uint8Array(ct)]));
  }

  async decrypt(ciphertext: string, context: string): Promise<Uint8Array> {
    const bytes = fromBase64Url(ciphertext);
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: asBytes(bytes.subarray(0, 12)), additionalData: asBytes(utf8(context)) },
      this.key,
      asBytes(bytes.subarray(12)),
    );
    return new Uint8Array(plain);
  }
}
