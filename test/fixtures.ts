import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, onTestFinished } from "vitest";
import { writeSyntheticModel } from "../models/synthetic.js";
import type { EcJwk } from "../src/core/jwk.js";
import { generateKeyPairJwk } from "../src/pack/keygen.js";
import { packModel } from "../src/pack/pack-model.js";

/**
 * Runs `fn` when the current test finishes, or, outside a test (a hook or a suite body), when
 * the file's tests do. vitest 4 silently never runs an `afterAll` registered inside a test.
 */
export function cleanup(fn: () => unknown): void {
  try {
    onTestFinished(async () => {
      await fn();
    });
  } catch {
    afterAll(async () => {
      await fn();
    });
  }
}

/** A temporary directory removed after the test (or the test file) finishes. */
export async function tempDir(prefix = "mv-test-"): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  cleanup(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export interface TestKeys {
  publisher: { privateJwk: EcJwk; publicJwk: EcJwk };
  recipient: { privateJwk: EcJwk; publicJwk: EcJwk };
}

export async function makeKeys(): Promise<TestKeys> {
  return { publisher: await generateKeyPairJwk("sig"), recipient: await generateKeyPairJwk("enc") };
}

/** Writes a synthetic model and packs it; returns the package directory and the model paths. */
export async function packSynthetic(
  dir: string,
  keys: TestKeys,
  o: {
    name: string;
    bytes: number;
    kind?: "matmul" | "bytes";
    external?: boolean;
    version?: number;
    shardSize?: number;
  },
) {
  const modelPath = join(dir, `${o.name}.onnx`);
  const files = await writeSyntheticModel(modelPath, {
    bytes: o.bytes,
    kind: o.kind ?? "bytes",
    external: o.external ?? false,
  });
  const outDir = join(dir, `${o.name}-v${o.version ?? 1}`);
  const result = await packModel({
    modelPath,
    id: "synthetic",
    version: o.version ?? 1,
    signingKey: keys.publisher.privateJwk,
    recipient: keys.recipient.publicJwk,
    outDir,
    shardSize: o.shardSize ?? 64 * 1024,
  });
  return { modelPath, files, outDir, manifest: result.manifest };
}
