import { beforeAll, describe, expect, it } from "vitest";
import { cekWrapInfo, unwrapContentKeyOnDevice } from "../../src/core/cek-wrap.js";
import { verifyLicenseToken } from "../../src/core/license-token.js";
import { grant, type Harness, registerDigits, startHarness, TestDevice } from "./harness.js";

let h: Harness;
let client: { id: string; token: string };
let licensor: { id: string; token: string };
let digest: string;

beforeAll(async () => {
  h = await startHarness();
  const publisher = await h.principal("pub", ["publisher"]);
  licensor = await h.principal("lic", ["licensor"]);
  client = await h.principal("client", ["client"]);
  ({ digest } = await registerDigits(h, publisher));
  await grant(h, licensor.token, client.id);
});

describe("POST /v1/licenses", () => {
  it("issues a device-bound license whose content key unwraps only inside Web Crypto", async () => {
    const device = await TestDevice.create();
    const r = await device.license(h, client.token, {
      model: { id: "digits", version: 1 },
      manifestDigest: digest,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.headers.get("cache-control")).toBe("no-store");
    const jwks = (await h.call("GET", "/.well-known/jwks.json")).body;
    const claims = await verifyLicenseToken(r.body.license, {
      jwks,
      issuer: h.url,
      currentDate: new Date(h.clock.now() * 1000),
      deviceJkt: device.jkt,
    });
    expect(claims.mdl).toEqual({ id: "digits", version: 1, digest });
    expect(claims.exp - claims.iat).toBe(600);
    expect(claims.offline_until).toBe(claims.exp + 3600);
    expect(claims.quota.allowance).toBe(100);
    const key = await unwrapContentKeyOnDevice(
      device.agree.privateKey,
      claims.cek.epk,
      claims.cek.wrapped,
      cekWrapInfo(claims.jti, "digits", 1),
    );
    expect(key.extractable).toBe(false);
    expect(key.usages).toEqual(["decrypt"]);
  });

  it("asks for a nonce first (400 use_dpop_nonce with DPoP-Nonce, no-store)", async () => {
    const device = await TestDevice.create();
    const r = await h.call(
      "POST",
      "/v1/licenses",
      client.token,
      { model: { id: "digits", version: 1 }, manifestDigest: digest, agreementKey: device.agreeJwk },
      { dpop: await device.proof(h) },
    );
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe("ERR_DPOP_NONCE_REQUIRED");
    expect(r.headers.get("dpop-nonce")).toMatch(/^[A-Za-z0-9_-]{27}$/);
    expect(r.headers.get("www-authenticate")).toContain('error="use_dpop_nonce"');
    expect(r.headers.get("cache-control")).toBe("no-store");
  });

  it("refuses a wrong manifest digest, an unknown model, and a model without entitlement", async () => {
    const device = await TestDevice.create();
    expect(
      (
        await device.license(h, client.token, {
          model: { id: "digits", version: 1 },
          manifestDigest: "A".repeat(43),
        })
      ).body.error.code,
    ).toBe("ERR_MANIFEST_DIGEST_MISMATCH");
    expect(
      (await device.license(h, client.token, { model: { id: "digits", version: 9 }, manifestDigest: digest }))
        .body.error.code,
    ).toBe("ERR_MODEL_NOT_FOUND");
    const stranger = await h.principal("stranger", ["client"]);
    expect(
      (
        await device.license(h, stranger.token, {
          model: { id: "digits", version: 1 },
          manifestDigest: digest,
        })
      ).body.error.code,
    ).toBe("ERR_ENTITLEMENT_NOT_FOUND");
  });
});
