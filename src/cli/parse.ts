import { parseArgs } from "node:util";
import { ModelVaultError } from "../core/errors.js";

export type Args = { positionals: string[] } & Record<string, string | boolean | string[] | undefined>;

/** Parses `--name value` options strictly: unknown options are a usage error, not ignored. */
export function parse(argv: string[], options: Record<string, "string" | "boolean">): Args {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: Object.fromEntries(Object.entries(options).map(([k, type]) => [k, { type }])),
    });
    return { ...(values as Record<string, string | boolean>), positionals };
  } catch (e) {
    throw new ModelVaultError("ERR_CLI_USAGE", (e as Error).message);
  }
}

export function optional(args: Args, name: string): string | undefined {
  const v = args[name];
  return typeof v === "string" ? v : undefined;
}

export function required(args: Args, name: string): string {
  const v = optional(args, name);
  if (v === undefined || v === "") throw new ModelVaultError("ERR_CLI_USAGE", `--${name} is required`);
  return v;
}
