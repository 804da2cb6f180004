import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { ModelVaultError } from "../core/errors.js";
import { checkEcJwk } from "../core/jwk.js";
import { readJsonKeyFile, writePublicFile, writeSecretFile } from "../pack/key-files.js";
import { generateKeyPairJwk, type KeyPurpose } from "../pack/keygen.js";
import { type PackOptions, type PackResult, packModel } from "../pack/pack-model.js";
import { verifyPackage } from "../pack/verify-package.js";
import { copyOrtRuntime } from "../vite/ort-files.js";
import type { CliIo } from "./io.js";
import { type Args, optional, required } from "./parse.js";
import { resolveRecipient } from "./recipient.js";

export async function keygenCommand(args: Args, io: CliIo): Promise<void> {
  const out = required(args, "out");
  const name = optional(args, "name") ?? "publisher";
  const use = (optional(args, "use") ?? "sig") as KeyPurpose;
  if (use !== "sig" && use !== "enc") throw new ModelVaultError("ERR_CLI_USAGE", "--use must be sig or enc");
  if (!/^[A-Za-z0-9._-]+$/.test(name))
    throw new ModelVaultError("ERR_CLI_USAGE", "--name must be [A-Za-z0-9._-]+");
  await mkdir(out, { recursive: true });
  const { privateJwk, publicJwk } = await generateKeyPairJwk(use);
  const force = args.force === true;
  const privatePath = join(out, `${name}.private.jwk.json`);
  const publicPath = join(out, `${name}.public.jwk.json`);
  await writeSecretFile(privatePath, `${JSON.stringify(privateJwk, null, 2)}\n`, force).catch((e) => {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") {
      throw new ModelVaultError("ERR_CLI_USAGE", `${privatePath} exists; pass --force to overwrite`);
    }
    throw e;
  });
  await writePublicFile(publicPath, `${JSON.stringify(publicJwk, null, 2)}\n`, true);
  io.out(`wrote ${privatePath} (private, mode 0600) and ${publicPath}; kid ${publicJwk.kid}`);
}

/** A monitoring policy file (docs/FORMAT.md, "Monitoring policy"); pack checks its contents. */
async function readMonitoringFile(path: string): Promise<NonNullable<PackOptions["monitoring"]>> {
  const text = await readFile(path, "utf8").catch(() => {
    throw new ModelVaultError("ERR_CLI_USAGE", `--monitor: cannot read ${path}`);
  });
  try {
    return JSON.parse(text);
  } catch {
    throw new ModelVaultError("ERR_PACK_MONITORING_INVALID", `--monitor: ${path} is not JSON`, { path: "" });
  }
}

export async function packCommand(args: Args, io: CliIo): Promise<void> {
  const modelPath = args.positionals[0];
  if (!modelPath)
    throw new ModelVaultError("ERR_CLI_USAGE", "usage: modelvault pack MODEL.onnx --id ID --version N ...");
  const shardSize = optional(args, "shard-size");
  const insecureKeyOut = optional(args, "insecure-key-out");
  const recipient = optional(args, "recipient");
  const integer = (name: string) => {
    const v = optional(args, name);
    if (v === undefined) return undefined;
    if (!/^[0-9]{1,15}$/.test(v))
      throw new ModelVaultError("ERR_CLI_USAGE", `--${name} must be a non-negative integer`);
    return Number(v);
  };
  const topK = integer("top-k");
  const decimals = integer("decimals");
  const expiresIn = integer("expires-in");
  const monitorFile = optional(args, "monitor");
  const monitoring = monitorFile ? await readMonitoringFile(monitorFile) : undefined;
  const trace = await traceOptions(args);
  const result = await packModel({
    modelPath,
    id: required(args, "id"),
    version: required(args, "version"),
    signingKey: await readJsonKeyFile(required(args, "sign-key"), "signing key"),
    ...(recipient ? { recipient: await resolveRecipient(recipient) } : {}),
    ...(insecureKeyOut ? { insecureKeyOut } : {}),
    outDir: required(args, "out"),
    ...(shardSize !== undefined ? { shardSize: Number(shardSize) } : {}),
    ...(topK !== undefined || decimals !== undefined ? { outputPolicy: { topK, decimals } } : {}),
    ...(expiresIn !== undefined ? { expires: Math.floor(Date.now() / 1000) + expiresIn } : {}),
    ...(monitoring ? { monitoring } : {}),
    ...trace,
    force: args.force === true,
  });
  const m = result.manifest;
  const shards = m.files.reduce((n, f) => n + f.shards.length, 0);
  io.out(
    `packed ${m.model.id} v${m.model.version}: ${m.size} bytes in ${shards} shards (${m.files.length} files) → ${result.outDir}` +
      (m.outputPolicy ? `; output policy ${JSON.stringify(m.outputPolicy)}` : "") +
      (m.monitoring ? `; monitoring ${m.monitoring.outputs.map((o) => o.output).join(", ")}` : ""),
  );
  if (recipient) {
    io.err(
      `publish ${join(result.outDir, "manifest.jws")} and ${join(result.outDir, "shards")}/ only: ` +
        (result.trace
          ? "content-key.jwe and trace-key.jwe are for `modelvault register` (they are sealed to the server, but they do not belong on a CDN)"
          : "content-key.jwe is for `modelvault register` (it is sealed to the server, but it does not belong on a CDN)"),
    );
  }
  if (result.trace) printTrace(result, io);
  if (insecureKeyOut) {
    io.err(
      `WARNING: the raw content key was written to ${insecureKeyOut}. Anyone with this file can decrypt the model.`,
    );
    io.err(
      "WARNING: use --insecure-key-out for local development only; production packs seal the key with --recipient.",
    );
  }
}

/** `--trace-*` flags as packModel options; numbers that do not parse reach packModel as NaN and are refused there. */
async function traceOptions(args: Args): Promise<Partial<PackOptions>> {
  const number = (name: string) => {
    const v = optional(args, name);
    if (v === undefined) return undefined;
    return /^[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/.test(v) ? Number(v) : Number.NaN;
  };
  const inputsFile = optional(args, "trace-inputs");
  const o: Partial<PackOptions> = {
    traceSlots: number("trace-slots"),
    traceKeyOut: optional(args, "trace-key-out"),
    traceStrength: number("trace-strength"),
    traceCoverage: number("trace-coverage"),
    traceTolerance: number("trace-tolerance"),
    traceInputs: inputsFile === undefined ? undefined : await readJsonFile(inputsFile, "--trace-inputs"),
  };
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

async function readJsonFile<T>(path: string, flag: string): Promise<T> {
  const text = await readFile(path, "utf8").catch(() => {
    throw new ModelVaultError("ERR_CLI_USAGE", `${flag}: cannot read ${path}`);
  });
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ModelVaultError("ERR_PACK_TRACE_INVALID", `${flag}: ${path} is not JSON`, {
      path: "traceInputs",
    });
  }
}

const fmt = (n: number) => (n === 0 ? "0" : n.toPrecision(3));

function printTrace(result: PackResult, io: CliIo): void {
  const t = result.trace as NonNullable<PackResult["trace"]>;
  const size = result.manifest.size;
  io.out(
    `traceable: ${t.slots} slots × ${t.slotLength} weights (${(t.coverage * 100).toFixed(1)}% of ${t.eligibleWeights} eligible weights), ` +
      `strength ${t.strength}σ; the variants add ${t.storageOverheadBytes} bytes (${((t.storageOverheadBytes / size) * 100).toFixed(1)}% of the model)`,
  );
  const q = t.quality;
  io.out(
    "skipped" in q
      ? `quality guard skipped: ${q.skipped}`
      : `quality: max |Δ| ${fmt(q.maxDiff)}, mean |Δ| ${fmt(q.meanDiff)} over ${q.samples} ${q.inputs} samples × ${q.codewords.length} codewords (${q.codewords.join(", ")}); tolerance ${q.tolerance}`,
  );
  io.err(
    `the trace key ${result.files.traceKeyOut} (mode 0600) is the publisher's copy of the trace secret: keep it like a private key; it is needed to trace a leak offline`,
  );
}

export async function verifyCommand(args: Args, io: CliIo): Promise<void> {
  const dir = args.positionals[0];
  if (!dir) throw new ModelVaultError("ERR_CLI_USAGE", "usage: modelvault verify DIR --publisher-key JWK");
  const publisher = checkEcJwk(
    await readJsonKeyFile(required(args, "publisher-key"), "publisher key"),
    false,
    "publisher key",
  );
  const recipientPath = optional(args, "recipient-key");
  const extractTo = optional(args, "extract");
  const traceKeyPath = optional(args, "trace-key");
  if (extractTo && !recipientPath)
    throw new ModelVaultError("ERR_CLI_USAGE", "--extract needs --recipient-key to decrypt the shards");
  const report = await verifyPackage(dir, {
    publisherKeys: [publisher],
    ...(recipientPath
      ? {
          recipientKey: checkEcJwk(
            await readJsonKeyFile(recipientPath, "recipient key"),
            true,
            "recipient key",
          ),
        }
      : {}),
    ...(extractTo ? { extractTo } : {}),
    ...(traceKeyPath ? { traceKey: await readJsonKeyFile(traceKeyPath, "trace key") } : {}),
  });
  const m = report.manifest;
  const v = report.variants;
  io.out(
    `ok ${m.model.id} v${m.model.version}: signature (kid ${report.publisherKid}), ${report.shards} shard digests` +
      (v ? `, ${v.checked} slot variant digests` : "") +
      (report.decrypted ? `, ${report.shards} shards decrypted` : " (pass --recipient-key to also decrypt)") +
      (v?.decrypted ? `, ${v.checked} slot variants decrypted` : ""),
  );
  if (report.extractedVariant === 0)
    io.err(
      `extracted to ${extractTo} with variant 0 in every one of the ${m.trace?.slots.length} trace slots: ` +
        "the model a device with the all-0 codeword assembles, not the unmarked original (which the package does not hold)",
    );
}

/** `modelvault copy-ort DIR`: the runtime files for bundlers other than Vite (see the README). */
export async function copyOrtCommand(args: Args, io: CliIo): Promise<void> {
  const dir = args.positionals[0];
  if (!dir) throw new ModelVaultError("ERR_CLI_USAGE", "usage: modelvault copy-ort DIR");
  for (const file of await copyOrtRuntime(dir)) io.out(`wrote ${file}`);
}
