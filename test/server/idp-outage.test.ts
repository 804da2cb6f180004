import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIALECTS, freshPostgres } from "./databases.js";
import { type Harness, startHarness } from "./harness.js";

type Mode = "ok" | "error" | "garbage" | "reset";

/** A real identity provider on loopback whose JWKS endpoint can be made to fail in each way an outage looks. */
async function identityProvider() {
  const { publicKey, privateKey } = await generateKeyPair("RS256");
  const jwk = { ...(await exportJWK(publicKey)), kid: "idp-1", alg: "RS256", use: "sig" };
  const state = { mode: "error" as Mode, requests: 0 };
  const server: Server = createServer((req, res) => {
    state.requests++;
    if (state.mode === "reset") return req.socket.destroy();
    if (state.mode === "error") return res.writeHead(502).end("bad gateway");
    if (state.mode === "garbage") return res.setHeader("content-type", "application/json").end("<html>");
    res.setHeader("content-type", "application/json").end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  return {
    state,
    privateKey,
    jwksUri: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`,
  };
}

describe.each(DIALECTS)("an identity-provider outage (%s)", (dialect) => {
  const issuer = "https://idp.example";
  let h: Harness;
  let idp: Awaited<ReturnType<typeof identityProvider>>;
  let auditorKey: string;

  beforeAll(async () => {
    idp = await identityProvider();
    h = await startHarness({
      ...(dialect === "postgres" ? { database: await freshPostgres() } : {}),
      options: {
        oidc: [{ issuer, audience: "modelvault", jwksUri: idp.jwksUri }],
        rateLimits: { authFailuresPerMinute: 5 },
      },
    });
    await h.call("POST", "/v1/admin/principals", h.admin, {
      name: "alice",
      roles: ["auditor"],
      oidc: { issuer, subject: "alice" },
    });
    auditorKey = (await h.principal("aud", ["auditor"])).token;
  });

  const idToken = (kid = "idp-1") =>
    new SignJWT({ sub: "alice", aud: "modelvault" })
      .setProtectedHeader({ alg: "RS256", kid })
      .setIssuer(issuer)
      .setIssuedAt(h.clock.now())
      .setExpirationTime(h.clock.now() + 300)
      .sign(idp.privateKey);

  it("is a retryable 503 (ERR_IDP_UNAVAILABLE, Retry-After), never ERR_AUTH_INVALID, and not counted as a failed authentication", async () => {
    for (const mode of ["error", "garbage", "reset", "error", "reset", "garbage", "error"] as Mode[]) {
      idp.state.mode = mode;
      const r = await h.call("GET", "/v1/anomalies", await idToken());
      expect(r.status, mode).toBe(503);
      expect(r.body.error.code, mode).toBe("ERR_IDP_UNAVAILABLE");
      expect(Number(r.headers.get("retry-after"))).toBeGreaterThan(0);
    }
    // Seven outage answers from this address, a limit of five failures: nobody is locked out.
    expect((await h.call("GET", "/v1/anomalies", auditorKey)).status).toBe(200);
    expect(idp.state.requests).toBeGreaterThanOrEqual(7);
  });

  it("recovers by itself when the provider is back, and still refuses what the keys do not vouch for", async () => {
    idp.state.mode = "ok";
    const ok = await h.call("GET", "/v1/anomalies", await idToken());
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    const unknownKid = await h.call("GET", "/v1/anomalies", await idToken("idp-2"));
    expect(unknownKid.status).toBe(401);
    expect(unknownKid.body.error.code).toBe("ERR_AUTH_INVALID");
    // Keys already fetched keep working through a later outage (jose caches them for 10 minutes).
    idp.state.mode = "reset";
    expect((await h.call("GET", "/v1/anomalies", await idToken())).status).toBe(200);
  });
});
