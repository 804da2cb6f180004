import { type FileHandle, open } from "node:fs/promises";
import { join } from "node:path";
import { toBase64Url } from "../../core/bytes.js";
import { mapLimit } from "../../core/concurrency.js";
import { slotSigns } from "../../core/tracing/marks.js";
import { slotKeyBytes } from "../../core/tracing/slot-keys.js";
import { TRACE_SCHEME, type TraceSection, variantContext } from "../../core/tracing/trace-manifest.js";
import { readFully } from "../file-source.js";
import { sealShardNode } from "../seal-shard-node.js";
import type { TracePlan, TraceSource } from "./plan-trace.js";
import { markSlot } from "./variants.js";

/**
 * Seals both variants of every slot (docs/TRACING.md, "Variants"): variant b of slot i under
 * its own key K(i, b) = slotKeyBytes(secret, model, i, b), a fresh random IV and the AAD of
 * variantContext, written beside the shards as `shards/<sha256 of ciphertext>.bin`. One slot at
 * a time per task, read from the model files, so memory is a few slots whatever the model size.
 * Returns the manifest's `trace` section and the bytes the variants add to the package.
 */
export async function sealVariants(
  plan: TracePlan,
  model: { id: string; version: number },
  files: readonly (TraceSource & { size: number })[],
  shardDir: string,
): Promise<{ trace: TraceSection; bytes: number }> {
  const trace: TraceSection = {
    scheme: TRACE_SCHEME,
    slots: plan.slots.map((s) => ({
      file: s.file,
      offset: s.offset,
      size: s.size,
      tensor: s.tensor,
      element: s.element,
      type: s.type,
      delta: s.delta,
      variants: [
        { sha256: "", iv: "" },
        { sha256: "", iv: "" },
      ],
    })),
  };
  const handles = new Map<string, Promise<FileHandle>>();
  const sizes = new Map(files.map((f) => [f.location, f.size]));
  let bytes = 0;
  try {
    for (const f of files)
      if (plan.slots.some((s) => s.file === f.location)) handles.set(f.location, open(f.path, "r"));
    await mapLimit(plan.slots, 4, async (slot, index) => {
      const original = new Uint8Array(slot.size);
      await readFully(await (handles.get(slot.file) as Promise<FileHandle>), original, slot.offset);
      const signs = await slotSigns(plan.secret, index, slot.length);
      const variants = markSlot(original, slot.type, signs, slot.delta, { index, tensor: slot.tensor });
      for (const bit of [0, 1] as const) {
        const key = await slotKeyBytes(plan.secret, model, index, bit);
        const ctx = variantContext(model, trace, sizes.get(slot.file) as number, index, bit);
        const sealed = sealShardNode(key, variants[bit], ctx);
        key.fill(0);
        const out = await open(join(shardDir, `${sealed.sha256}.bin`), "wx", 0o644);
        try {
          await out.writev(sealed.parts);
        } finally {
          await out.close();
        }
        const entry = trace.slots[index]?.variants[bit] as { sha256: string; iv: string };
        entry.sha256 = sealed.sha256;
        entry.iv = toBase64Url(sealed.iv);
        bytes += sealed.parts[0].length + sealed.parts[1].length;
      }
      original.fill(0);
    });
  } finally {
    await Promise.all([...handles.values()].map(async (h) => (await h.catch(() => undefined))?.close()));
  }
  return { trace, bytes };
}
