import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { cleanup } from "../fixtures.js";
import { startHarness } from "./harness.js";

/** An identity provider on loopback: its own key, served as its JWKS. */
async function identityProvider(issuer: string) {
  const { publicKey, privateKey } = await generateKeyPair("RS256");
  const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "RS256", use: "sig" };
  const server: Server = createServer((_, res) =>
    res.setHeader("content-type", "application/json").end(JSON.stringify({ keys: [jwk] })),
  );
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  cleanup(() => new Promise<void>((r) => server.close(() => r())));
  const jwksUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
  return { issuer, jwksUri, privateKey };
}

describe("OIDC identity is issuer + subject (ASVS 10.3.3)", () => {
  it("two issuers with the same sub are two principals, each with its own roles, and neither can act as the other", async () => {
    const a = await identityProvider("https://idp-a.example");
    const b = await identityProvider("https://idp-b.example");
    const h = await startHarness({
      options: {
        oidc: [
          { issuer: a.issuer, audience: "modelvault", jwksUri: a.jwksUri },
          { issuer: b.issuer, audience: "modelvault", jwksUri: b.jwksUri },
        ],
      },
    });
    // The same subject at both providers: an auditor at A, a licensor at B.
    for (const [idp, roles] of [
      [a, ["auditor"]],
      [b, ["licensor"]],
    ] as const) {
      const r = await h.call("POST", "/v1/admin/principals", h.admin, {
        name: `alice@${idp.issuer}`,
        roles,
        oidc: { issuer: idp.issuer, subject: "alice" },
      });
      expect(r.status).toBe(201);
    }
    const token = (idp: typeof a, iss = idp.issuer) =>
      new SignJWT({ sub: "alice", aud: "modelvault" })
        .setProtectedHeader({ alg: "RS256", kid: "k1" })
        .setIssuer(iss)
        .setIssuedAt(h.clock.now())
        .setExpirationTime(h.clock.now() + 300)
        .sign(idp.privateKey);
    const fromA = await token(a);
    const fromB = await token(b);
    // Auditor-only route: A's alice reads the audit log, B's alice may not.
    expect((await h.call("GET", "/v1/audit", fromA)).status).toBe(200);
    expect((await h.call("GET", "/v1/audit", fromB)).status).toBe(403);
    // Licensor-only route: B's alice passes authorization (400: empty body), A's alice may not.
    expect((await h.call("POST", "/v1/entitlements", fromB, {})).status).toBe(400);
    expect((await h.call("POST", "/v1/entitlements", fromA, {})).status).toBe(403);
    // The audit log names two principals, never one for both.
    const actors = new Set(
      (
        await h.server.ctx.db.kysely
          .selectFrom("audit_log")
          .select("actor")
          .where("action", "=", "authz")
          .execute()
      ).map((r) => r.actor),
    );
    expect(actors.size).toBe(2);
    // A token claiming issuer A but signed by B's key is no one: keys belong to their issuer.
    expect((await h.call("GET", "/v1/audit", await token(b, a.issuer))).status).toBe(401);
  });
});
