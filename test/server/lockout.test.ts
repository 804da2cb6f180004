import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { DIALECTS, freshPostgres } from "./databases.js";
import { type Harness, startHarness } from "./harness.js";

/**
 * Failed-authentication limits (issue 9, defect 2): an attacker's failures never lock out
 * someone else's valid credential; a guesser is slowed; counts hold across instances.
 * The harness reaches the server from 127.0.0.1, configured here as the trusted proxy, so
 * X-Forwarded-For names the client.
 */
const LIMIT = 6;
const bogus = (id: string) => `mvk_${id.padEnd(12, "A").slice(0, 12)}_${"B".repeat(43)}`;
const from = (address: string) => ({ "x-forwarded-for": address });

describe.each(DIALECTS)("failed authentications (%s)", (dialect) => {
  async function server(database?: Awaited<ReturnType<typeof freshPostgres>>): Promise<Harness> {
    return startHarness({
      ...(dialect === "postgres" ? { database: database ?? (await freshPostgres()) } : {}),
      options: { trustProxy: ["127.0.0.1", "::1"], rateLimits: { authFailuresPerMinute: LIMIT } },
    });
  }
  const get = (h: Harness, token: string, address: string) =>
    h.call("GET", "/v1/admin/principals", token, undefined, from(address));

  it("an attacker's bad keys, made up or with the victim's key id, do not lock out the victim", async () => {
    const h = await server();
    const victimKeyId = h.admin.slice(4, 16);
    const statuses: number[] = [];
    for (let i = 0; i < 3 * LIMIT; i++) {
      statuses.push((await get(h, bogus(`x${i}`), "203.0.113.7")).status);
      statuses.push((await get(h, `mvk_${victimKeyId}_${"C".repeat(43)}`, "203.0.113.7")).status);
    }
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    expect((await get(h, h.admin, "198.51.100.2")).status).toBe(200);
  });

  it("behind a proxy that is not trusted, others' failures still do not refuse a valid key", async () => {
    const h = await startHarness({
      ...(dialect === "postgres" ? { database: await freshPostgres() } : {}),
      options: { rateLimits: { authFailuresPerMinute: LIMIT } },
    });
    for (let i = 0; i < 3 * LIMIT; i++) await h.call("GET", "/v1/admin/principals", bogus(`y${i}`));
    expect((await h.call("GET", "/v1/admin/principals", bogus("later"))).status).toBe(429);
    expect((await h.call("GET", "/v1/admin/principals", h.admin)).status).toBe(200);
    expect(h.logs.some((l) => String(l.msg).startsWith("X-Forwarded-For ignored"))).toBe(false);
  });

  it("a guesser is slowed: after the limit its guesses are refused unheard, even a right one", async () => {
    const h = await server();
    const keyId = h.admin.slice(4, 16);
    const guesses: number[] = [];
    for (let i = 0; i < 10; i++)
      guesses.push((await get(h, `mvk_${keyId}_${String(i).repeat(43).slice(0, 43)}`, "203.0.113.9")).status);
    expect(guesses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(guesses.slice(5)).toEqual([429, 429, 429, 429, 429]);
    // The right secret from the guessing address is refused too: the guess is never evaluated.
    const right = await get(h, h.admin, "203.0.113.9");
    expect(right.status).toBe(429);
    expect(Number(right.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(right.body.error.code).toBe("ERR_RATE_LIMITED");
    // Made-up keys from an address over its limit are refused; after the minute, it is heard again.
    for (let i = 0; i < LIMIT; i++) await get(h, bogus(`z${i}`), "203.0.113.10");
    expect((await get(h, bogus("zz"), "203.0.113.10")).status).toBe(429);
    h.clock.advance(60);
    expect((await get(h, bogus("zz"), "203.0.113.10")).status).toBe(401);
    expect((await get(h, h.admin, "203.0.113.9")).status).toBe(200);
  });

  it("a key guessed from many addresses is refused to those that failed on it, not to its owner", async () => {
    const h = await server();
    const keyId = h.admin.slice(4, 16);
    for (let i = 0; i < LIMIT; i++)
      expect((await get(h, `mvk_${keyId}_${"D".repeat(43)}`, `192.0.2.${i + 1}`)).status).toBe(401);
    // The key has failed LIMIT times in all: an address that failed on it gets no second try…
    expect((await get(h, `mvk_${keyId}_${"E".repeat(43)}`, "192.0.2.1")).status).toBe(429);
    // …while a new address is still heard, and the owner is served.
    expect((await get(h, `mvk_${keyId}_${"E".repeat(43)}`, "192.0.2.200")).status).toBe(401);
    expect((await get(h, h.admin, "198.51.100.77")).status).toBe(200);
  });

  it("a client cannot pick its address with X-Forwarded-For when no proxy is trusted", async () => {
    const h = await startHarness({
      ...(dialect === "postgres" ? { database: await freshPostgres() } : {}),
      options: { rateLimits: { authFailuresPerMinute: LIMIT } },
    });
    const statuses: number[] = [];
    for (let i = 0; i < LIMIT + 2; i++)
      statuses.push((await get(h, bogus(`w${i}`), `203.0.113.${i + 1}`)).status);
    expect(statuses.slice(LIMIT)).toEqual([429, 429]);
    expect(h.logs.filter((l) => String(l.msg).startsWith("X-Forwarded-For ignored"))).toHaveLength(1);
  });

  it("with a trusted proxy, only its own hop is believed: a client-written X-Forwarded-For prefix is ignored", async () => {
    const h = await server();
    const statuses: number[] = [];
    // The proxy appends the real client (203.0.113.50); the client wrote a random first hop.
    for (let i = 0; i < LIMIT + 2; i++)
      statuses.push((await get(h, bogus(`v${i}`), `10.9.9.${i}, 203.0.113.50`)).status);
    expect(statuses.slice(LIMIT)).toEqual([429, 429]);
  });

  if (dialect === "postgres") {
    it("counts are shared: failures split across two instances add up", async () => {
      const database = await freshPostgres();
      const a = await server(database);
      const b = await startHarness({
        database,
        options: { trustProxy: ["127.0.0.1", "::1"], rateLimits: { authFailuresPerMinute: LIMIT } },
      });
      b.clock.t = a.clock.t;
      const statuses: number[] = [];
      for (let i = 0; i < LIMIT + 2; i++)
        statuses.push((await get(i % 2 ? a : b, bogus(`u${i}`), "203.0.113.60")).status);
      expect(statuses.slice(0, LIMIT).every((s) => s === 401)).toBe(true);
      expect(statuses.slice(LIMIT)).toEqual([429, 429]);
    });
  }

  it("behind an address over its limit, only existing active keys count as someone else's", async () => {
    const h = await server();
    const other = await h.principal("other", ["auditor"]);
    const revoked = await h.principal("revoked", ["auditor"]);
    const disabled = await h.principal("disabled", ["auditor"]);
    await h.call("DELETE", `/v1/admin/api-keys/${revoked.token.slice(4, 16)}`, h.admin);
    await h.server.ctx.db.kysely
      .updateTable("principals")
      .set({ disabled_at: h.clock.now() })
      .where("id", "=", disabled.id)
      .execute();
    for (let i = 0; i < LIMIT; i++) await get(h, bogus(`t${i}`), "203.0.113.70");
    const status = async (token: string) =>
      (await h.call("GET", "/v1/anomalies", token, undefined, from("203.0.113.70"))).status;
    expect(await status(other.token)).toBe(200);
    expect(await status(revoked.token)).toBe(429);
    expect(await status(disabled.token)).toBe(429);
  });

  it("an ID token claiming a huge identity is refused as any bad credential (401), never 500", async () => {
    const h = await server();
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
    const random = (n: number) => randomBytes(n).toString("base64url"); // incompressible, unlike "aaa…"
    const token = `${b64({ alg: "RS256" })}.${b64({ iss: random(1500), sub: random(1500) })}.c2ln`;
    for (let i = 0; i < 3; i++) expect((await get(h, token, "203.0.113.80")).status).toBe(401);
  });

  it("counts an OIDC principal as existing while it is not disabled", async () => {
    const h = await server();
    await h.call("POST", "/v1/admin/principals", h.admin, {
      name: "alice",
      roles: ["auditor"],
      oidc: { issuer: "https://idp.example", subject: "alice smith" },
    });
    const { identityIsActive } = await import("../../src/server/auth/authenticate.js");
    const ctx = h.server.ctx;
    expect(await identityIsActive(ctx, "oidc:https://idp.example alice smith")).toBe(true);
    expect(await identityIsActive(ctx, "oidc:https://idp.example mallory")).toBe(false);
    await ctx.db.kysely
      .updateTable("principals")
      .set({ disabled_at: 1 })
      .where("name", "=", "alice")
      .execute();
    expect(await identityIsActive(ctx, "oidc:https://idp.example alice smith")).toBe(false);
  });
});
