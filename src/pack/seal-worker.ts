/**
 * A worker thread of the seal pool: reads one shard of a file, seals it with node:crypto
 * (sealShardNode), and writes `shards/<sha256>.bin`. Keeps one buffer and one file handle per
 * input, so memory per worker is one shard whatever the model size. The job's `zero` ranges (the
 * slots of a traceable package) are zeroed after reading, before sealing.
 */
import { type FileHandle, open } from "node:fs/promises";
import { join } from "node:path";
import { parentPort, workerData } from "node:worker_threads";
import { readFully } from "./file-source.js";
import type { SealJob, SealReply } from "./seal-pool.js";
import { sealShardNode } from "./seal-shard-node.js";

const { key, shardSize } = workerData as { key: Uint8Array; shardSize: number };
const buffer = new Uint8Array(shardSize);
const inputs = new Map<string, Promise<FileHandle>>();

async function run(job: SealJob): Promise<{ iv: Uint8Array; sha256: string }> {
  let input = inputs.get(job.path);
  if (!input) {
    input = open(job.path, "r");
    inputs.set(job.path, input);
  }
  const plain = buffer.subarray(0, job.ctx.plaintextSize);
  await readFully(await input, plain, job.offset);
  for (const [start, end] of job.zero ?? []) plain.fill(0, start, end);
  const sealed = sealShardNode(key, plain, job.ctx);
  const out = await open(join(job.shardDir, `${sealed.sha256}.bin`), "wx", 0o644);
  try {
    await out.writev(sealed.parts);
  } finally {
    await out.close();
  }
  return { iv: sealed.iv, sha256: sealed.sha256 };
}

parentPort?.on("message", (message: { id: number; job: SealJob } | "close") => {
  if (message === "close") {
    key.fill(0);
    void Promise.all([...inputs.values()].map(async (f) => (await f).close())).finally(() => process.exit(0));
    return;
  }
  run(message.job).then(
    (result) => parentPort?.postMessage({ id: message.id, ok: true, ...result } satisfies SealReply),
    (e: Error) =>
      parentPort?.postMessage({ id: message.id, ok: false, error: e.message } satisfies SealReply),
  );
});
