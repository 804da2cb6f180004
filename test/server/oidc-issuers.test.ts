import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIALECTS, freshPostgres } from "./databases.js";
import { type Harness, startHarness } from "./harness.js";

const ISSUERS = ["https://idp-a.example", "https://idp-b.example", "https://idp-c.example"] as const;
type Issuer = (typeof ISSUERS)[number];

/** Three identity providers on one loopback server, each with its own key at /<index>. */
async function identityProviders() {
  const pairs = await Promise.all(ISSUERS.map(() => generateKeyPair("RS256")));
  const jwks = await Promise.all(
    pairs.map(async (p) => ({ keys: [{ ...(await exportJWK(p.publicKey)), kid: "k", alg: "RS256" }] })),
  );
  const server = createServer((req, res) =>
    res.setHeader("content-type", "application/json").end(JSON.stringify(jwks[Number(req.url?.slice(1))])),
  );
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    config: ISSUERS.map((issuer, i) => ({ issuer, audience: "modelvault", jwksUri: `${base}/${i}` })),
    keyOf: (issuer: Issuer) => pairs[ISSUERS.indexOf(issuer)]?.privateKey as CryptoKey,
  };
}

describe.each(DIALECTS)("OIDC subjects belong to their issuer (%s)", (dialect) => {
  let h: Harness;
  let idps: Awaited<ReturnType<typeof identityProviders>>;

  beforeAll(async () => {
    idps = await identityProviders();
    h = await startHarness({
      ...(dialect === "postgres" ? { database: await freshPostgres() } : {}),
      options: { oidc: idps.config },
    });
    // The same subject at two providers is two people: an auditor at A, a mere client at B.
    for (const [issuer, roles] of [
      [ISSUERS[0], ["auditor"]],
      [ISSUERS[1], ["client"]],
    ] as const) {
      const p = await h.call("POST", "/v1/admin/principals", h.admin, {
        name: `sam at ${issuer}`,
        roles,
        oidc: { issuer, subject: "sam" },
      });
      expect(p.status).toBe(201);
    }
  });

  const idToken = (issuer: Issuer, sub = "sam") =>
    new SignJWT({ sub, aud: "modelvault" })
      .setProtectedHeader({ alg: "RS256", kid: "k" })
      .setIssuer(issuer)
      .setIssuedAt(h.clock.now())
      .setExpirationTime(h.clock.now() + 300)
      .sign(idps.keyOf(issuer));
  const anomalies = async (issuer: Issuer) =>
    (await h.call("GET", "/v1/anomalies", await idToken(issuer))).status;

  it("the same subject at two issuers is two principals, each with its own roles", async () => {
    expect(await anomalies(ISSUERS[0])).toBe(200);
    expect(await anomalies(ISSUERS[1])).toBe(403);
  });

  it("a configured issuer vouching for a subject registered only at another issuer authenticates no one", async () => {
    const r = await h.call("GET", "/v1/anomalies", await idToken(ISSUERS[2]));
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe("ERR_AUTH_INVALID");
  });
});
