import { connect, type Socket } from "node:net";
import { beforeAll, describe, expect, it } from "vitest";
import { type Harness, startHarness } from "./harness.js";

let h: Harness;
const HEADERS_MS = 600;
const REQUEST_MS = 1500;

beforeAll(async () => {
  h = await startHarness({ options: { timeouts: { headersMs: HEADERS_MS, requestMs: REQUEST_MS } } });
});

/**
 * A slowloris client on a raw socket: writes `head` then one more byte of `drip` every
 * `everyMs` until the server closes the connection. Resolves with what the server sent and how
 * long the connection lived.
 */
function slowClient(head: string, drip: string, everyMs: number) {
  return new Promise<{ answer: string; ms: number }>((resolve, reject) => {
    const url = new URL(h.url);
    const started = performance.now();
    const socket: Socket = connect(Number(url.port), url.hostname);
    let answer = "";
    let i = 0;
    let timer: ReturnType<typeof setInterval> | undefined;
    socket.on("connect", () => {
      socket.write(head);
      timer = setInterval(() => {
        if (!socket.destroyed && !socket.writableEnded) socket.write(drip[i++ % drip.length] as string);
      }, everyMs);
    });
    socket.on("data", (d) => {
      answer += d.toString();
    });
    socket.on("error", () => {}); // a reset after the server gave up is expected
    socket.on("close", () => {
      clearInterval(timer);
      resolve({ answer, ms: performance.now() - started });
    });
    setTimeout(() => {
      clearInterval(timer);
      socket.destroy();
      reject(new Error(`the server kept a slow connection open for 20 s: ${answer}`));
    }, 20_000);
  });
}

describe("slow clients are cut off (J7)", () => {
  it("headers dripped a byte at a time: 408 and closed once the header timeout passes", async () => {
    const { answer, ms } = await slowClient(
      "GET /v1/anomalies HTTP/1.1\r\nHost: x\r\n",
      "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
      50,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
    expect(ms).toBeGreaterThanOrEqual(HEADERS_MS - 50);
    expect(ms).toBeLessThan(HEADERS_MS + 2000);
  });

  it("a body dripped a byte at a time: cut off once the request timeout passes, nothing read as a request", async () => {
    const before = await h.server.ctx.db.kysely
      .selectFrom("audit_log")
      .select((eb) => eb.fn.countAll().as("n"))
      .executeTakeFirstOrThrow();
    const { answer, ms } = await slowClient(
      `POST /v1/admin/principals HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${h.admin}\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{"name":"`,
      "a",
      50,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
    expect(ms).toBeGreaterThanOrEqual(REQUEST_MS - 50);
    expect(ms).toBeLessThan(REQUEST_MS + 2000);
    const after = await h.server.ctx.db.kysely
      .selectFrom("audit_log")
      .select((eb) => eb.fn.countAll().as("n"))
      .executeTakeFirstOrThrow();
    expect(after).toEqual(before);
    // Meanwhile, and after, a normal client is served.
    expect((await h.call("GET", "/healthz")).status).toBe(200);
  });
});
