import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { verifyLicenseToken } from "../../src/core/license-token.js";
import { grant, registerDigits, startHarness, TestDevice } from "./harness.js";

const model = { id: "digits", version: 1 };

describe("server lifecycle", () => {
  it("rotates signing keys: old licenses verify while the retired key is published, new ones use the new kid", async () => {
    const h = await startHarness();
    const publisher = await h.principal("pub", ["publisher"]);
    const licensor = await h.principal("lic", ["licensor"]);
    const client = await h.principal("c", ["client"]);
    const { digest } = await registerDigits(h, publisher);
    await grant(h, licensor.token, client.id);
    const d = await TestDevice.create();
    const old = (await d.license(h, client.token, { model, manifestDigest: digest })).body.license as string;
    const jwksBefore = (await h.call("GET", "/.well-known/jwks.json")).body;
    const rotated = await h.call("POST", "/v1/admin/signing-keys/rotate", h.admin);
    expect(rotated.status).toBe(200);
    expect(jwksBefore.keys.map((k: { kid: string }) => k.kid)).toContain(rotated.body.current); // pre-published as "next"
    const fresh = (await d.license(h, client.token, { model, manifestDigest: digest })).body
      .license as string;
    const kidOf = (t: string) =>
      JSON.parse(Buffer.from(t.split(".")[0] as string, "base64url").toString()).kid;
    expect(kidOf(fresh)).toBe(rotated.body.current);
    expect(kidOf(old)).not.toBe(rotated.body.current);
    const jwks = (await h.call("GET", "/.well-known/jwks.json")).body;
    const at = new Date(h.clock.now() * 1000);
    await expect(verifyLicenseToken(old, { jwks, issuer: h.url, currentDate: at })).resolves.toBeTruthy();
    const withoutRetired = { keys: jwks.keys.filter((k: { kid: string }) => k.kid !== kidOf(old)) };
    await expect(
      verifyLicenseToken(old, { jwks: withoutRetired, issuer: h.url, currentDate: at }),
    ).rejects.toMatchObject({ code: "ERR_LICENSE_INVALID" });
  });

  it("accepts OIDC ID tokens from a configured issuer, and only those", async () => {
    const { publicKey, privateKey } = await generateKeyPair("RS256");
    const jwk = { ...(await exportJWK(publicKey)), kid: "idp-1", alg: "RS256", use: "sig" };
    const idp = createServer((_, res) =>
      res.setHeader("content-type", "application/json").end(JSON.stringify({ keys: [jwk] })),
    );
    await new Promise<void>((r) => idp.listen(0, "127.0.0.1", r));
    const jwksUri = `http://127.0.0.1:${(idp.address() as AddressInfo).port}/jwks`;
    const issuer = "https://idp.example";
    const h = await startHarness({ options: { oidc: [{ issuer, audience: "modelvault", jwksUri }] } });
    const p = await h.call("POST", "/v1/admin/principals", h.admin, {
      name: "alice",
      roles: ["auditor"],
      oidc: { issuer, subject: "alice" },
    });
    const token = (over: Record<string, unknown> = {}, key = privateKey) =>
      new SignJWT({ sub: "alice", aud: "modelvault", ...over })
        .setProtectedHeader({ alg: "RS256", kid: "idp-1" })
        .setIssuer(issuer)
        .setIssuedAt(h.clock.now())
        .setExpirationTime(h.clock.now() + 300)
        .sign(key);
    expect((await h.call("GET", "/v1/anomalies", await token())).status).toBe(200);
    expect((await h.call("GET", "/v1/anomalies", await token({ sub: "mallory" }))).status).toBe(401);
    expect((await h.call("GET", "/v1/anomalies", await token({ aud: "other" }))).status).toBe(401);
    const stranger = await generateKeyPair("RS256");
    expect((await h.call("GET", "/v1/anomalies", await token({}, stranger.privateKey))).status).toBe(401);
    expect(p.status).toBe(201);
    idp.close();
  });

  it("shuts down gracefully: in-flight requests finish, then new ones are refused", async () => {
    const h = await startHarness();
    const body = JSON.stringify({ name: "late arrival" });
    const url = new URL("/v1/admin/principals", h.url);
    const status = new Promise<number>((resolve, reject) => {
      const req = request(
        url,
        {
          method: "POST",
          headers: {
            authorization: `Bearer ${h.admin}`,
            "content-type": "application/json",
            "content-length": String(body.length),
          },
        },
        (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        },
      );
      req.on("error", reject);
      req.write(body.slice(0, 5));
      // The request is on the wire, half sent, when shutdown begins; it must still complete.
      setTimeout(() => {
        closing = h.server.close();
        setTimeout(() => req.end(body.slice(5)), 100);
      }, 100);
    });
    let closing: Promise<void> | undefined;
    expect(await status).toBe(201);
    await closing;
    await expect(fetch(`${h.url}/healthz`)).rejects.toThrow();
    await h.server.close(); // idempotent
  });

  it("exposes Prometheus metrics to auditors", async () => {
    const h = await startHarness();
    const auditor = await h.principal("aud", ["auditor"]);
    await h.call("GET", "/healthz");
    const r = await fetch(`${h.url}/metrics`, { headers: { authorization: `Bearer ${auditor.token}` } });
    const text = await r.text();
    expect(r.headers.get("content-type")).toContain("text/plain");
    expect(text).toMatch(/modelvault_http_requests_total\{method="GET",route="\/healthz",status="200"\} 1/);
    expect(text).toContain("modelvault_http_request_duration_seconds_bucket");
  });
});
