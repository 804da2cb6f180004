import { readdirSync, readFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import type { Context, Hono } from "hono";
import { ModelVaultError } from "../../core/errors.js";

/**
 * The console's policy: scripts, styles and connections to this origin only; no inline script
 * or style, no eval, no frames, no plugins, no forms posting elsewhere.
 */
export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  ico: "image/x-icon",
  json: "application/json",
  map: "application/json",
};

interface ConsoleFile {
  body: Uint8Array;
  type: string;
}

/**
 * Reads the built console into memory once (it is small): requests are answered from this
 * table, so no request path ever reaches the file system (no traversal to guard).
 */
function readConsole(dir: string): Map<string, ConsoleFile> {
  const files = new Map<string, ConsoleFile>();
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const ext = entry.name.split(".").pop() ?? "";
    const type = TYPES[ext];
    if (type) files.set(relative(dir, path).split(sep).join("/"), { body: readFileSync(path), type });
  }
  return files;
}

/** Serves the console at /console/ (same origin as the API, so no CORS), or says it is not here. */
export function consoleRoutes(app: Hono, dir: string | false): void {
  const files = dir ? readConsole(dir) : new Map<string, ConsoleFile>();
  const serve = (c: Context, name: string) => {
    const file = files.get(name);
    if (!file) {
      if (files.size === 0) throw new ModelVaultError("ERR_CONSOLE_UNAVAILABLE");
      throw new ModelVaultError("ERR_NOT_FOUND");
    }
    // Built assets carry a content hash in their names: cache them for good; index.html never.
    const cache = name.startsWith("assets/") ? "public, max-age=31536000, immutable" : "no-store";
    return c.body(file.body as Uint8Array<ArrayBuffer>, 200, {
      "Content-Type": file.type,
      "Cache-Control": cache,
      "Content-Security-Policy": CONSOLE_CSP,
      "Cross-Origin-Opener-Policy": "same-origin",
      "Cross-Origin-Resource-Policy": "same-origin",
    });
  };
  app.get("/console", (c) => c.redirect("/console/", 301));
  app.get("/console/", (c) => serve(c, "index.html"));
  app.get("/console/*", (c) => serve(c, c.req.path.slice("/console/".length)));
}
