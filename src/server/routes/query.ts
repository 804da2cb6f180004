import type { Context } from "hono";
import type { z } from "zod";
import { ModelVaultError } from "../../core/errors.js";

/** Validates query parameters with a strict schema (400 naming the parameter). */
export function readQuery<T extends z.ZodType>(c: Context, schema: T): z.infer<T> {
  const result = schema.safeParse(c.req.query());
  if (!result.success) {
    const issue = result.error.issues[0];
    const path = issue?.code === "unrecognized_keys" ? String(issue.keys[0]) : (issue?.path.join(".") ?? "");
    throw new ModelVaultError("ERR_REQUEST_INVALID", `query parameter "${path}": ${issue?.message}`, {
      path,
    });
  }
  return result.data;
}
