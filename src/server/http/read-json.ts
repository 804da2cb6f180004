import type { Context } from "hono";
import type { z } from "zod";
import { fromUtf8 } from "../../core/bytes.js";
import { ModelVaultError } from "../../core/errors.js";

/**
 * Reads a JSON body with every check before parsing: content type, declared and actual size
 * (also for chunked bodies without Content-Length), strict UTF-8, then JSON, then the schema.
 * Errors name the failing field; nothing is parsed past the size limit.
 */
export async function readJson<T extends z.ZodType>(
  c: Context,
  schema: T,
  maxBytes: number,
): Promise<z.infer<T>> {
  const type = c.req.header("content-type") ?? "";
  if (!/^application\/json(\s*;\s*charset=utf-8)?$/i.test(type.trim())) {
    throw new ModelVaultError("ERR_UNSUPPORTED_MEDIA_TYPE", "Content-Type must be application/json");
  }
  const declared = Number(c.req.header("content-length") ?? 0);
  if (declared > maxBytes)
    throw new ModelVaultError("ERR_REQUEST_TOO_LARGE", `body exceeds ${maxBytes} bytes`);
  const body = c.req.raw.body;
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (body) {
    const reader = body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        await reader.cancel();
        throw new ModelVaultError("ERR_REQUEST_TOO_LARGE", `body exceeds ${maxBytes} bytes`);
      }
      chunks.push(value);
    }
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  let value: unknown;
  try {
    value = JSON.parse(fromUtf8(bytes));
  } catch {
    throw new ModelVaultError("ERR_REQUEST_INVALID", "body is not valid UTF-8 JSON", { path: "" });
  }
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const path = issue?.path.join(".") ?? "";
    const field = issue?.code === "unrecognized_keys" ? `${path ? `${path}.` : ""}${issue.keys[0]}` : path;
    throw new ModelVaultError("ERR_REQUEST_INVALID", `field "${field}": ${issue?.message}`, { path: field });
  }
  return result.data;
}
