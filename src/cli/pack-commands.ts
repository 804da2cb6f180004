import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { ModelVaultError } from "../core/errors.js";
import { checkEcJwk } from "../core/jwk.js";
import { readJsonKeyFile, writePublicFile, writeSecretFile } from "../pack/key-files.js";
import { generateKeyPairJwk, type KeyPurpose } from "../pack/keygen.js";
import { type PackOptions, packModel } from "../pack/pack-model.js";
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
        `content-key.jwe is for \`modelvault register\` (it is sealed to the server, but it does not belong on a CDN)`,
    );
  }
  if (insecureKeyOut) {
    io.err(
      `WARNING: the raw content key was written to ${insecureKeyOut}. Anyone with this file can decrypt the model.`,
    );
    io.err(
      "WARNING: use --insecure-key-out for local development only; production packs seal the key with --recipient.",
    );
  }
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
  });
  const m = report.manifest;
  io.out(
    `ok ${m.model.id} v${m.model.version}: signature (kid ${report.publisherKid}), ${report.shards} shard digests` +
      (report.decrypted ? `, ${report.shards} shards decrypted` : " (pass --recipient-key to also decrypt)"),
  );
}

/** `modelvault copy-ort DIR`: the runtime files for bundlers other than Vite (see the README). */
export async function copyOrtCommand(args: Args, io: CliIo): Promise<void> {
  const dir = args.positionals[0];
  if (!dir) throw new ModelVaultError("ERR_CLI_USAGE", "usage: modelvault copy-ort DIR");
  for (const file of await copyOrtRuntime(dir)) io.out(`wrote ${file}`);
}
