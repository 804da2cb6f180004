/**
 * Everything a load reports, as one discriminated union through one callback
 * (`onProgress`). Byte counts are ciphertext bytes for downloads and plaintext for decryption.
 */
export type LoadProgress =
  | {
      status: "manifest-verified";
      modelId: string;
      version: number;
      publisherKid: string;
      fromCache: boolean;
    }
  | {
      status: "license-granted";
      licenseId: string;
      deviceJkt: string;
      expiresAt: number;
      offlineUntil: number | null;
      allowance: number;
      offline: boolean;
    }
  | {
      status: "shard-downloaded";
      location: string;
      index: number;
      bytes: number;
      loadedBytes: number;
      totalBytes: number;
      fromCache: boolean;
    }
  | { status: "shard-verified"; location: string; index: number }
  | { status: "shard-decrypted"; location: string; index: number; decryptedBytes: number; totalBytes: number }
  | { status: "session-created"; backend: "webgpu" | "wasm"; reason: string }
  | {
      status: "storage";
      /** The origin's storage use and quota, bytes, from `navigator.storage.estimate()`. */
      usage: number;
      quota: number;
      /** Ciphertext bytes this model still needs in the cache. */
      needed: number;
      /** Whether the origin's storage is persistent, when the app asked for it (`persistentStorage`). */
      persisted?: boolean;
    }
  | { status: "ready" }
  | { status: "warning"; code: string; message: string };

/** Backend choice with the reason, reported once per load. */
export interface BackendChoice {
  backend: "webgpu" | "wasm";
  reason: string;
}
