import { isModelVaultError } from "../core/errors.js";
import type { CliIo } from "./io.js";
import { copyOrtCommand, keygenCommand, packCommand, verifyCommand } from "./pack-commands.js";
import { type Args, parse } from "./parse.js";
import {
  adminCommand,
  auditCommand,
  grantCommand,
  registerCommand,
  revokeCommand,
  serveCommand,
} from "./server-commands.js";
import { traceCommand } from "./trace-command.js";

type Command = {
  options: Record<string, "string" | "boolean">;
  run: (args: Args, io: CliIo) => Promise<void>;
  help: string;
};

const COMMANDS: Record<string, Command> = {
  keygen: {
    help: "keygen --out DIR [--name publisher] [--use sig|enc] [--force]   P-256 key pair as JWK files (private 0600)",
    options: { out: "string", name: "string", use: "string", force: "boolean" },
    run: keygenCommand,
  },
  pack: {
    help: [
      "pack MODEL.onnx --id ID --version N --sign-key JWK (--recipient SERVER_URL|JWKS|JWK | --insecure-key-out FILE) --out DIR [--shard-size BYTES] [--top-k K] [--decimals D] [--expires-in SECONDS] [--monitor POLICY.json] [--force]",
      "        [--trace-slots N --trace-key-out FILE [--trace-strength S] [--trace-coverage C] [--trace-tolerance T] [--trace-inputs FEEDS.json]]",
      "        traceable package (docs/TRACING.md): N marked slots (1..512) covering C of the float weights (default 0.5), each",
      "        weight moved by S × its tensor's std (default 0.01); refused when outputs move by more than T (default 0.25) on 32",
      '        random inputs (floats uniform in [0,1), integers 0/1, symbolic dims 1) or on FEEDS.json ([{"input": {"dims": [..], "data": [..]}}]).',
      "        FILE gets the trace secret (0600); with --recipient, trace-key.jwe seals it for `register`. The guard is skipped",
      "        (reason printed) above 1 GiB of model files, for string inputs or no float output, or when random inputs cannot run",
    ].join("\n"),
    options: {
      id: "string",
      version: "string",
      "sign-key": "string",
      recipient: "string",
      "insecure-key-out": "string",
      out: "string",
      "shard-size": "string",
      "top-k": "string",
      decimals: "string",
      "expires-in": "string",
      monitor: "string",
      "trace-slots": "string",
      "trace-key-out": "string",
      "trace-strength": "string",
      "trace-coverage": "string",
      "trace-tolerance": "string",
      "trace-inputs": "string",
      force: "boolean",
    },
    run: packCommand,
  },
  verify: {
    help: [
      "verify DIR --publisher-key JWK [--recipient-key JWK [--extract DIR]] [--trace-key FILE]",
      "        a traceable package's slot variants are checked too (decrypted with --trace-key, the publisher's trace key file, or",
      "        with --recipient-key through trace-key.jwe); --extract fills every slot with variant 0 (the all-0 codeword's model)",
    ].join("\n"),
    options: {
      "publisher-key": "string",
      "recipient-key": "string",
      extract: "string",
      "trace-key": "string",
    },
    run: verifyCommand,
  },
  "copy-ort": {
    help: "copy-ort DIR   onnxruntime-web's runtime files the worker loads (serve DIR at loadModel's wasmPaths)",
    options: {},
    run: copyOrtCommand,
  },
  serve: {
    help: "serve [--data DIR] [--host H] [--port P] [--public-url URL] [--tls-cert PEM --tls-key PEM] [--postgres URL] [--cors ORIGINS] [--trust-proxy ADDRS] [--console DIR|off]",
    options: {
      data: "string",
      host: "string",
      port: "string",
      "public-url": "string",
      "tls-cert": "string",
      "tls-key": "string",
      postgres: "string",
      cors: "string",
      "trust-proxy": "string",
      console: "string",
    },
    run: serveCommand,
  },
  admin: {
    help: "admin principal create --name N [--roles a,b] | principal list | principal roles ID --roles a,b | key create|revoke ID | publisher-key add JWK --principal ID | publisher-key revoke KID --reason TEXT [--own] | model owner MODEL --principal ID | model retire MODEL VERSION --reason TEXT | signing-key rotate",
    options: { name: "string", roles: "string", principal: "string", reason: "string", own: "boolean" },
    run: adminCommand,
  },
  register: {
    help: "register DIR   (a packed model: manifest.jws + content-key.jwe, and trace-key.jwe when traceable)",
    options: {},
    run: registerCommand,
  },
  grant: {
    help: "grant --principal ID --model ID --quota N [--period S] [--allowance N] [--devices N] [--ttl S] [--offline S] [--scopes infer,offline] [--days D] [--min-version N] [--max-version N]",
    options: {
      principal: "string",
      model: "string",
      quota: "string",
      period: "string",
      allowance: "string",
      devices: "string",
      ttl: "string",
      offline: "string",
      scopes: "string",
      days: "string",
      "min-version": "string",
      "max-version": "string",
    },
    run: grantCommand,
  },
  revoke: {
    help: "revoke entitlement|device|license ID | revoke release ENTITLEMENT DEVICE   (frees the device's slot)",
    options: {},
    run: revokeCommand,
  },
  trace: {
    help: "trace LEAKED.onnx --package DIR --trace-key FILE [--model ID --version N] [--epsilon E] [--json] [--reads-out FILE] [--reads-only]   who leaked a traceable model (docs/TRACING.md)",
    options: {
      package: "string",
      "trace-key": "string",
      model: "string",
      version: "string",
      epsilon: "string",
      json: "boolean",
      "reads-out": "string",
      "reads-only": "boolean",
    },
    run: traceCommand,
  },
  audit: {
    help: "audit verify (--db FILE | --postgres URL | --export FILE) --jwks FILE [--checkpoints FILE] | audit export (--db FILE | --postgres URL) | audit tail [--n N]",
    options: {
      db: "string",
      postgres: "string",
      export: "string",
      jwks: "string",
      checkpoints: "string",
      n: "string",
    },
    run: auditCommand,
  },
};

export function usage(): string {
  return [
    "usage: modelvault <command> [options]",
    "",
    ...Object.values(COMMANDS).map((c) => `  modelvault ${c.help}`),
    "",
    "environment:",
    "  MODELVAULT_SERVER    the license server for admin, register, grant, revoke, audit tail (default http://127.0.0.1:8787)",
    "  MODELVAULT_API_KEY   the API key those commands send (never given on the command line)",
  ].join("\n");
}

/**
 * Runs one CLI invocation and returns the exit code: 0 success, 1 a refused operation
 * (the ModelVaultError code is printed), 2 bad usage. Never calls process.exit itself.
 */
export async function main(argv: string[], io: CliIo, extra: Record<string, Command> = {}): Promise<number> {
  const [name, ...rest] = argv;
  const command = name ? (COMMANDS[name] ?? extra[name]) : undefined;
  if (!command || name === "help" || name === "--help") {
    (command || name === "help" || name === "--help" ? io.out : io.err)(usage());
    return name === "help" || name === "--help" ? 0 : 2;
  }
  try {
    await command.run(parse(rest, command.options), io);
    return 0;
  } catch (e) {
    if (isModelVaultError(e)) {
      io.err(`error ${e.code}: ${e.message}`);
      return e.code === "ERR_CLI_USAGE" ? 2 : 1;
    }
    io.err(`error: ${(e as Error).message ?? String(e)}`);
    return 1;
  }
}
