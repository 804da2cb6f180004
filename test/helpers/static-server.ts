import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join, normalize } from "node:path";

export interface StaticServer {
  url: string;
  /** Paths requested, with their Range header if any. */
  log: { path: string; range: string | undefined }[];
  /** Cut the next response for `path` after this many body bytes (simulates a dropped connection). */
  cutNext(path: string, afterBytes: number): void;
  /**
   * The network goes down once this many more body bytes have been sent: the response in
   * flight is cut, and every request after it is dropped until `restore()`.
   */
  outageAfter(bytes: number): void;
  /**
   * Slow retrieval and endless data for the next `times` (default 1) responses for `path`: `stallAfter` sends that
   * many body bytes and then nothing, keeping the connection open; `dripEveryMs` sends one byte
   * per interval; `endless` sends the body and then zeros without end.
   */
  misbehaveNext(path: string, how: Misbehaviour, times?: number): void;
  restore(): void;
  close(): Promise<void>;
}

export type Misbehaviour = { stallAfter: number } | { dripEveryMs: number } | { endless: true };

const TYPES: Record<string, string> = {
  html: "text/html",
  js: "text/javascript",
  mjs: "text/javascript",
  wasm: "application/wasm",
  json: "application/json",
};
const contentType = (path: string) =>
  TYPES[/\.([a-z]+)$/.exec(path.endsWith("/") ? "index.html" : path)?.[1] ?? ""] ??
  "application/octet-stream";

/**
 * A small static file server with ETag and single-range support, for resumable-download tests.
 * Serves `root` on loopback; can drop a connection mid-body on request.
 */
export async function startStaticServer(
  root: string,
  headers: Record<string, string> = {},
): Promise<StaticServer> {
  const log: StaticServer["log"] = [];
  const cuts = new Map<string, number>();
  const misbehaviours = new Map<string, { how: Misbehaviour; times: number }>();
  const timers = new Set<ReturnType<typeof setInterval>>();
  let budget = Number.POSITIVE_INFINITY;
  const server: Server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    if (budget <= 0) {
      req.socket.destroy();
      return;
    }
    log.push({ path, range: req.headers.range });
    for (const [k, v] of Object.entries({
      "access-control-allow-origin": "*",
      "access-control-expose-headers": "etag",
      ...headers,
    }))
      res.setHeader(k, v);
    let body: Buffer;
    try {
      // A directory means its index.html, as every static host does.
      const file = normalize(path).replace(/^(\.\.[/\\])+/, "");
      body = await readFile(join(root, file.endsWith("/") ? `${file}index.html` : file));
    } catch {
      res.writeHead(404).end();
      return;
    }
    const etag = `"${createHash("sha1").update(body).digest("hex")}"`;
    res.setHeader("etag", etag);
    res.setHeader("accept-ranges", "bytes");
    const next = misbehaviours.get(path);
    if (next) {
      if (--next.times <= 0) misbehaviours.delete(path);
      misbehave(res, body, next.how, timers);
      return;
    }
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    if (range && (!req.headers["if-range"] || req.headers["if-range"] === etag)) {
      start = Number(range[1]);
      res.writeHead(206, {
        "content-range": `bytes ${start}-${body.length - 1}/${body.length}`,
        "content-length": body.length - start,
      });
    } else {
      res.writeHead(200, { "content-length": body.length, "content-type": contentType(path) });
    }
    const cut = cuts.get(path) ?? (budget < body.length - start ? budget : undefined);
    budget -= Math.min(budget, body.length - start);
    if (cut !== undefined) {
      cuts.delete(path);
      res.write(body.subarray(start, start + cut));
      setTimeout(() => res.destroy(), 20);
      return;
    }
    res.end(body.subarray(start));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    log,
    cutNext: (path, after) => cuts.set(path, after),
    misbehaveNext: (path, how, times = 1) => misbehaviours.set(path, { how, times }),
    outageAfter: (bytes) => {
      budget = bytes;
    },
    restore: () => {
      budget = Number.POSITIVE_INFINITY;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const t of timers) clearInterval(t);
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Writes `body` the way `how` says, until the client goes away. */
function misbehave(
  res: import("node:http").ServerResponse,
  body: Buffer,
  how: Misbehaviour,
  timers: Set<ReturnType<typeof setInterval>>,
) {
  const every = (ms: number, tick: () => void) => {
    const t = setInterval(() => (res.destroyed ? clearInterval(t) : tick()), ms);
    timers.add(t);
    res.on("close", () => {
      clearInterval(t);
      timers.delete(t);
    });
  };
  // An endless body has no length to keep to; the others promise the true one.
  res.writeHead(200, "endless" in how ? {} : { "content-length": body.length });
  if ("stallAfter" in how) {
    res.write(body.subarray(0, how.stallAfter));
  } else if ("dripEveryMs" in how) {
    let i = 0;
    every(how.dripEveryMs, () => {
      if (i < body.length) res.write(body.subarray(i, ++i));
    });
  } else {
    res.write(body);
    every(5, () => res.write(Buffer.alloc(16 * 1024)));
  }
}
