import { createHash } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { parseApiKey } from "../../src/server/auth/api-keys.js";
import { type Harness, startHarness } from "./harness.js";

const LIMIT = 5;
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ options: { rateLimits: { perPrincipalPerMinute: LIMIT } } });
});

describe("API keys and the per-principal request limit", () => {
  it("an API key in the query string is not a credential, and the database holds only its hash", async () => {
    const auditor = await h.principal("auditor-q", ["auditor"]);
    // A key in a URL ends up in proxy logs and browser history (API2:2023): never accepted there.
    for (const name of ["api_key", "apiKey", "access_token", "key", "token"]) {
      const r = await h.call("GET", `/v1/anomalies?${name}=${encodeURIComponent(auditor.token)}`);
      expect([400, 401], name).toContain(r.status);
      expect(r.status === 401 || r.body.error.code === "ERR_REQUEST_INVALID", name).toBe(true);
    }
    const { id, secret } = parseApiKey(auditor.token) ?? { id: "", secret: "" };
    const rows = await h.server.ctx.db.kysely.selectFrom("api_keys").selectAll().execute();
    const row = rows.find((r) => r.id === id);
    expect(row?.secret_hash).toBe(createHash("sha256").update(secret).digest("hex"));
    // No column of any key row holds the secret or the whole key.
    for (const r of rows)
      for (const value of Object.values(r)) {
        expect(String(value)).not.toContain(secret);
        expect(String(value)).not.toContain(auditor.token);
      }
  });

  it("a principal over its per-minute limit gets 429 with Retry-After, others carry on", async () => {
    // The admin is limited too: its four calls fall in a minute of their own.
    const nextMinute = () => {
      h.clock.t = (Math.floor(h.clock.t / 60) + 1) * 60;
    };
    nextMinute();
    const busy = await h.principal("busy", ["auditor"]);
    const calm = await h.principal("calm", ["auditor"]);
    nextMinute();
    const statuses = [];
    for (let i = 0; i < LIMIT; i++) statuses.push((await h.call("GET", "/v1/anomalies", busy.token)).status);
    expect(statuses).toEqual(Array(LIMIT).fill(200));
    h.clock.advance(20);
    const over = await h.call("GET", "/v1/anomalies", busy.token);
    expect(over.status).toBe(429);
    expect(over.body.error.code).toBe("ERR_RATE_LIMITED");
    expect(over.headers.get("retry-after")).toBe("40"); // until this fixed window ends
    expect((await h.call("GET", "/v1/anomalies", calm.token)).status).toBe(200);
    // Fixed one-minute windows: the next minute starts afresh, so at most 2 × LIMIT pass in any
    // rolling minute that straddles a window edge (the bound README states), never more.
    h.clock.advance(40);
    for (let i = 0; i < LIMIT; i++)
      expect((await h.call("GET", "/v1/anomalies", busy.token)).status).toBe(200);
    expect((await h.call("GET", "/v1/anomalies", busy.token)).status).toBe(429);
  });

  it("a burst of ten times the limit at once: exactly the limit is served, the rest get a fast 429, never a 5xx", async () => {
    h.clock.t = (Math.floor(h.clock.t / 60) + 1) * 60;
    const spiky = await h.principal("spiky", ["auditor"]);
    const steady = await h.principal("steady", ["auditor"]);
    h.clock.t = (Math.floor(h.clock.t / 60) + 1) * 60;
    const started = performance.now();
    const burst = await Promise.all(
      Array.from({ length: 10 * LIMIT }, () => h.call("GET", "/v1/anomalies", spiky.token)),
    );
    const statuses = burst.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(LIMIT);
    expect(statuses.filter((s) => s === 429)).toHaveLength(9 * LIMIT);
    expect(performance.now() - started).toBeLessThan(5000);
    // The shed load costs the others nothing.
    expect((await h.call("GET", "/v1/anomalies", steady.token)).status).toBe(200);
  });
});
