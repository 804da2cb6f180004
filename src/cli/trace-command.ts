import { readFile } from "node:fs/promises";
import { sha256Hex } from "../core/digest.js";
import { ModelVaultError } from "../core/errors.js";
import { readJsonKeyFile, writeSecretFile } from "../pack/key-files.js";
import { readLeak } from "../pack/leak/read-leak.js";
import { api } from "./api-client.js";
import type { CliIo } from "./io.js";
import { type Args, optional, required } from "./parse.js";

/**
 * `modelvault trace LEAKED.onnx --package DIR --trace-key FILE`: reads the marks of a leaked
 * model locally (the leak never leaves the machine), then asks the license server to score
 * every device's codeword against them; the server audits the trace and answers who is accused.
 */
export async function traceCommand(args: Args, io: CliIo): Promise<void> {
  const leakedPath = args.positionals[0];
  if (!leakedPath)
    throw new ModelVaultError(
      "ERR_CLI_USAGE",
      "usage: modelvault trace LEAKED.onnx --package DIR --trace-key FILE",
    );
  const traceKey = await readJsonKeyFile(required(args, "trace-key"), "trace key");
  const leak = await readLeak({ leakedPath, packageDir: required(args, "package"), traceKey });
  const id = optional(args, "model");
  const version = optional(args, "version");
  if (
    (id !== undefined && id !== leak.model.id) ||
    (version !== undefined && Number(version) !== leak.model.version)
  )
    throw new ModelVaultError(
      "ERR_CLI_USAGE",
      `the package is ${leak.model.id} v${leak.model.version}, not ${id ?? leak.model.id} v${version ?? leak.model.version}`,
    );
  // Diagnostics on stderr: with --json or --reads-only, stdout is exactly one JSON document.
  for (const m of leak.matches)
    io.err(
      m.leaked === null
        ? `  ${m.tensor}: not found in the leak (best correlation ${m.correlation.toFixed(3)})`
        : `  ${m.tensor}: found as ${m.leaked} (correlation ${m.correlation.toFixed(3)})`,
    );
  const readsOut = optional(args, "reads-out");
  if (readsOut)
    await writeSecretFile(readsOut, `${JSON.stringify({ model: leak.model, reads: leak.reads })}\n`, true);
  if (args["reads-only"]) {
    io.out(JSON.stringify({ model: leak.model, reads: leak.reads }));
    return;
  }
  const epsilon = optional(args, "epsilon");
  const report = await api(
    io,
    "POST",
    `/v1/models/${encodeURIComponent(leak.model.id)}/versions/${leak.model.version}/traces`,
    {
      reads: leak.reads,
      leakSha256: await sha256Hex(await readFile(leakedPath)),
      ...(epsilon !== undefined ? { epsilon: Number(epsilon) } : {}),
    },
  );
  if (args.json) {
    io.out(JSON.stringify(report, null, 2));
    return;
  }
  const accused = (report.accused ?? []) as {
    device: string;
    principal: string;
    score: number;
    bound: number;
  }[];
  io.out(
    `${leak.model.id} v${leak.model.version}: ${report.readable} of ${report.slots} slots read, ${report.holders} devices hold codewords`,
  );
  if (accused.length === 0) io.out("no accusation: the evidence does not support one");
  for (const a of accused)
    io.out(
      `ACCUSED device ${a.device} (principal ${a.principal}): score ${a.score.toFixed(1)}, an innocent scores this high with probability <= ${a.bound.toExponential(2)}`,
    );
}
