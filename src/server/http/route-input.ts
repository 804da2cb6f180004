import type { Context } from "hono";
import type { z } from "zod";
import { ModelVaultError } from "../../core/errors.js";
import { readJson } from "./read-json.js";

/**
 * What a route accepts, declared next to its path so that every input is validated before the
 * handler runs (path parameters included: a malformed id is a 400, never a ZodError and a 500),
 * and so that the bad-input fuzzer can generate requests from the same schemas.
 */
export interface RouteSchemas {
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  /** Body limit for this route; default the server's `maxBodyBytes`. */
  maxBodyBytes?: number;
}

type Parsed<T> = T extends z.ZodType ? z.infer<T> : undefined;

export interface RouteInput<S extends RouteSchemas> {
  params: Parsed<S["params"]>;
  query: Parsed<S["query"]>;
  body: Parsed<S["body"]>;
}

/** Turns the first schema issue into ERR_REQUEST_INVALID naming where the bad value was. */
function invalid(where: "path" | "query", issues: z.core.$ZodIssue[]): ModelVaultError {
  const issue = issues[0];
  const path =
    issue?.code === "unrecognized_keys" ? String(issue.keys[0]) : (issue?.path.map(String).join(".") ?? "");
  const what = where === "path" ? "path parameter" : "query parameter";
  return new ModelVaultError("ERR_REQUEST_INVALID", `${what} "${path}": ${issue?.message}`, {
    path,
    in: where,
  });
}

function parse(schema: z.ZodType | undefined, value: unknown, where: "path" | "query"): unknown {
  if (!schema) return undefined;
  const result = schema.safeParse(value);
  if (!result.success) throw invalid(where, result.error.issues);
  return result.data;
}

/** Validates path parameters, then the query, then the body (in that order, each strictly). */
export async function readRouteInput<S extends RouteSchemas>(
  c: Context,
  schemas: S,
  defaultMaxBodyBytes: number,
): Promise<RouteInput<S>> {
  const params = parse(schemas.params, c.req.param(), "path");
  const query = parse(schemas.query, c.req.query(), "query");
  const body = schemas.body
    ? await readJson(c, schemas.body, schemas.maxBodyBytes ?? defaultMaxBodyBytes)
    : undefined;
  return { params, query, body } as RouteInput<S>;
}
