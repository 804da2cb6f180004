/**
 * The runtime's IndexedDB (schema version 2, `idb`). Holds ciphertext shards, signed manifests,
 * license tokens, device keys (non-extractable CryptoKeys), rollback and clock state, and the
 * usage outbox. Never plaintext model bytes. Each put is its own transaction, so a failure
 * (storage full, eviction) never leaves half an entry.
 */
import { type DBSchema, type IDBPDatabase, wrap } from "idb";
import type { EcJwk } from "../src/core/jwk.js";

export const DB_NAME = "modelvault";
export const DB_VERSION = 2;

export interface DeviceRecord {
  origin: string;
  signPrivate: CryptoKey;
  signPublic: EcJwk;
  jkt: string;
  agreePrivate: CryptoKey;
  agreePublic: EcJwk;
  akt: string;
  createdAt: number;
}

export interface UsageState {
  jkt: string;
  seq: number;
  prev: string;
  /** Inferences counted but not yet in a report. */
  pending: number;
  pendingSince: number;
  license: string;
}

export interface OutboxEntry {
  jkt: string;
  seq: number;
  token: string;
  origin: string;
  count: number;
}

interface Schema extends DBSchema {
  devices: { key: string; value: DeviceRecord };
  manifests: { key: string; value: { url: string; jws: string; storedAt: number } };
  shards: { key: string; value: { sha256: string; bytes: ArrayBuffer } };
  // The signed token only: the keys that verify it offline are pinned by the app, never stored
  // here where anyone with the profile could plant their own (older records may still carry a
  // `jwks` member; it is ignored).
  licenses: {
    key: string;
    value: { key: string; token: string; receivedAt: number };
  };
  state: { key: string; value: { key: string; value: unknown } };
  usage: { key: string; value: UsageState };
  outbox: { key: [string, number]; value: OutboxEntry };
  models: { key: string; value: CachedModel };
}

/** A model whose ciphertext is cached: what eviction needs to know about it. */
export interface CachedModel {
  /** `<model id>@<version>`. */
  key: string;
  shards: string[];
  bytes: number;
  /** Trusted-clock seconds of its last load: least recently used goes first. */
  lastUsed: number;
}

export type RuntimeDb = IDBPDatabase<Schema>;

/** Opens (and on first use creates) the database; resolves undefined when IndexedDB is unusable. */
export async function openStorage(
  factory: IDBFactory | undefined = globalThis.indexedDB,
): Promise<Storage | undefined> {
  if (!factory) return undefined;
  try {
    // Opened through the given factory (idb's openDB would use the global one), then wrapped.
    const request = factory.open(DB_NAME, DB_VERSION);
    request.onupgradeneeded = (event) => {
      const db = request.result;
      // Version 1 layout. Later versions add steps here, keeping readers of old layouts.
      if (event.oldVersion < 1) {
        db.createObjectStore("devices", { keyPath: "origin" });
        db.createObjectStore("manifests", { keyPath: "url" });
        db.createObjectStore("shards", { keyPath: "sha256" });
        db.createObjectStore("licenses", { keyPath: "key" });
        db.createObjectStore("state", { keyPath: "key" });
        db.createObjectStore("usage", { keyPath: "jkt" });
        db.createObjectStore("outbox", { keyPath: ["jkt", "seq"] });
      }
      // Version 2: which cached shards belong to which model, for least-recently-used eviction.
      // Shards cached under version 1 have no owner: the first eviction pass may drop them.
      if (event.oldVersion < 2) db.createObjectStore("models", { keyPath: "key" });
    };
    const db = (await wrap(request)) as unknown as RuntimeDb;
    return new Storage(db);
  } catch {
    return undefined;
  }
}

export class Storage {
  constructor(readonly db: RuntimeDb) {}

  async getState<T>(key: string): Promise<T | undefined> {
    return (await this.db.get("state", key))?.value as T | undefined;
  }

  async setState(key: string, value: unknown): Promise<void> {
    const tx = this.db.transaction("state", "readwrite", { durability: "strict" });
    await tx.store.put({ key, value });
    await tx.done;
  }

  /**
   * Stores a shard's ciphertext; false when storage refused it (full, evicted): nothing
   * half-written. IndexedDB clones the value when put() is called, so the caller's buffer is
   * free for decryption at once and no copy of ours waits for the disk.
   */
  async putShard(sha256: string, bytes: Uint8Array): Promise<boolean> {
    try {
      const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
      const value = whole ? (bytes.buffer as ArrayBuffer) : bytes.slice().buffer;
      const tx = this.db.transaction("shards", "readwrite");
      await tx.store.put({ sha256, bytes: value });
      await tx.done;
      return true;
    } catch {
      return false;
    }
  }

  async getShard(sha256: string): Promise<Uint8Array | undefined> {
    const row = await this.db.get("shards", sha256).catch(() => undefined);
    return row ? new Uint8Array(row.bytes) : undefined;
  }

  async deleteShard(sha256: string): Promise<void> {
    await this.db.delete("shards", sha256).catch(() => undefined);
  }

  /** Writes a usage report to the outbox and the device's chain state in one durable transaction. */
  async commitReport(entry: OutboxEntry, state: UsageState): Promise<void> {
    const tx = this.db.transaction(["outbox", "usage"], "readwrite", { durability: "strict" });
    await tx.objectStore("outbox").put(entry);
    await tx.objectStore("usage").put(state);
    await tx.done;
  }

  close(): void {
    this.db.close();
  }
}
