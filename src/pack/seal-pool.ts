import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import type { ShardContext } from "../core/shard-aad.js";

export interface SealJob {
  path: string;
  offset: number;
  ctx: ShardContext;
  shardDir: string;
  /**
   * Byte ranges [start, end) of this shard's plaintext to seal as zeros: the slots of a
   * traceable package (docs/TRACING.md), which live only in their sealed variants.
   */
  zero?: [number, number][];
}

export type SealReply =
  | { id: number; ok: true; iv: Uint8Array; sha256: string }
  | { id: number; ok: false; error: string };

/**
 * Worker threads that seal shards in parallel: AES-GCM and SHA-256 are CPU-bound and node:crypto
 * runs them on the calling thread, so more than one core needs more than one thread.
 */
export class SealPool {
  private readonly workers: { worker: Worker; busy: boolean; exited: boolean }[] = [];
  private broken: string | undefined;
  private readonly waiting: (() => void)[] = [];
  private readonly pending = new Map<number, { resolve: (r: SealReply) => void }>();
  private nextId = 0;

  constructor(key: Uint8Array, shardSize: number, threads = Math.min(4, availableParallelism())) {
    const url = new URL(
      import.meta.url.endsWith(".ts") ? "./seal-worker-tsx.mjs" : "./seal-worker.js",
      import.meta.url,
    );
    for (let i = 0; i < Math.max(1, threads); i++) {
      const worker = new Worker(url, { workerData: { key, shardSize } });
      worker.on("message", (reply: SealReply) => {
        this.pending.get(reply.id)?.resolve(reply);
        this.pending.delete(reply.id);
      });
      const slot = { worker, busy: false, exited: false };
      worker.on("error", (e: Error) => this.fail(e.message));
      worker.on("exit", () => {
        slot.exited = true;
        this.fail("seal worker exited");
      });
      this.workers.push(slot);
    }
  }

  /** A dead worker fails everything in flight and everything after: no job waits forever. */
  private fail(error: string): void {
    this.broken ??= error;
    for (const p of this.pending.values()) p.resolve({ id: -1, ok: false, error });
    this.pending.clear();
    for (const wake of this.waiting.splice(0)) wake();
  }

  /** Seals one shard on the next free worker. */
  async seal(job: SealJob): Promise<{ iv: Uint8Array; sha256: string }> {
    let slot = this.workers.find((w) => !w.busy);
    while (!slot) {
      if (this.broken) throw new Error(this.broken);
      await new Promise<void>((r) => this.waiting.push(r));
      slot = this.workers.find((w) => !w.busy);
    }
    if (this.broken) throw new Error(this.broken);
    slot.busy = true;
    const id = this.nextId++;
    try {
      const reply = await new Promise<SealReply>((resolve) => {
        this.pending.set(id, { resolve });
        slot.worker.postMessage({ id, job });
      });
      if (!reply.ok) throw new Error(reply.error);
      return reply;
    } finally {
      slot.busy = false;
      this.waiting.shift()?.();
    }
  }

  /** Stops the workers (they zero their copy of the key first). Idempotent. */
  async close(): Promise<void> {
    const workers = this.workers.splice(0).filter((w) => !w.exited);
    this.broken ??= "seal pool closed";
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            w.worker.once("exit", () => resolve());
            w.worker.postMessage("close");
          }),
      ),
    );
  }
}
