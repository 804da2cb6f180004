import { SignJWT } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { createDpopProof } from "../../src/core/dpop-proof.js";
import { grant, type Harness, registerDigits, startHarness, TestDevice } from "./harness.js";

let h: Harness;
let client: { id: string; token: string };
let digest: string;
const model = { id: "digits", version: 1 };

beforeAll(async () => {
  h = await startHarness();
  const publisher = await h.principal("pub", ["publisher"]);
  const licensor = await h.principal("lic", ["licensor"]);
  client = await h.principal("client", ["client"]);
  ({ digest } = await registerDigits(h, publisher));
  await grant(h, licensor.token, client.id, { maxDevices: 100, quota: 100_000 });
});

/** A device that already holds a fresh nonce. */
async function primed(): Promise<TestDevice> {
  const d = await TestDevice.create();
  const r = await d.license(h, client.token, { model, manifestDigest: digest });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return d;
}

const send = (d: TestDevice, dpop: string | string[], body: Record<string, unknown> = {}) =>
  h.call(
    "POST",
    "/v1/licenses",
    client.token,
    { model, manifestDigest: digest, agreementKey: d.agreeJwk, ...body },
    { dpop: Array.isArray(dpop) ? dpop.join(", ") : dpop },
  );
const code = (r: { body: { error?: { code: string } } }) => r.body.error?.code ?? "ok";

describe("DPoP proofs at POST /v1/licenses (RFC 9449)", () => {
  it("accepts a proof exactly once (replayed jti refused)", async () => {
    const d = await primed();
    const proof = await d.proof(h);
    expect(code(await send(d, proof))).toBe("ok");
    const replay = await send(d, proof);
    expect(replay.status).toBe(401);
    expect(code(replay)).toBe("ERR_DPOP_REPLAY");
    expect(replay.headers.get("www-authenticate")).toContain('error="invalid_dpop_proof"');
  });

  it("keys the replay cache on the device key: two devices may use the same jti", async () => {
    const a = await primed();
    const b = await primed();
    const jti = "shared-jti-0123456789";
    expect(code(await send(a, await a.proof(h, { jti })))).toBe("ok");
    expect(code(await send(b, await b.proof(h, { jti })))).toBe("ok");
  });

  it("checks iat at the window's edges (±60 s)", async () => {
    const d = await primed();
    const now = h.clock.now();
    expect(code(await send(d, await d.proof(h, { iat: now - 61 })))).toBe("ERR_DPOP_INVALID");
    expect(code(await send(d, await d.proof(h, { iat: now + 61 })))).toBe("ERR_DPOP_INVALID");
    expect(code(await send(d, await d.proof(h, { iat: now - 60 })))).toBe("ok");
    expect(code(await send(d, await d.proof(h, { iat: now + 59 })))).toBe("ok");
  });

  it("refuses a wrong htm or htu, ignoring only query, fragment and default-port spelling", async () => {
    const d = await primed();
    const url = new URL(`${h.url}/v1/licenses`);
    for (const htm of ["GET", "post", "PUT"])
      expect(code(await send(d, await d.proof(h, { htm })))).toBe("ERR_DPOP_INVALID");
    for (const htu of [
      `http://evil.example:${url.port}/v1/licenses`,
      `${url.protocol}//${url.hostname}:1/v1/licenses`,
      `https://${url.host}/v1/licenses`,
      `${h.url}/v1/licenses/`,
      `${h.url}/V1/licenses`,
      `${h.url}/v1/usage`,
    ]) {
      expect(code(await send(d, await d.proof(h, { htu }))), htu).toBe("ERR_DPOP_INVALID");
    }
    expect(code(await send(d, await d.proof(h, { htu: `${h.url}/v1/licenses?x=1#y` })))).toBe("ok");
    expect(
      code(
        await send(
          d,
          await d.proof(h, { htu: `${h.url.toUpperCase().replace("HTTP", "http")}/v1/licenses` }),
        ),
      ),
    ).toBe("ok");
  });

  it("requires the server nonce; refuses stale nonces and nonces from another deployment", async () => {
    const d = await TestDevice.create();
    expect(code(await send(d, await d.proof(h)))).toBe("ERR_DPOP_NONCE_REQUIRED");
    const fresh = await primed();
    const stale = fresh.nonce;
    h.clock.advance(6 * 60);
    const r = await send(fresh, await fresh.proof(h, { nonce: stale }));
    expect(code(r)).toBe("ERR_DPOP_NONCE_REQUIRED");
    expect(r.headers.get("dpop-nonce")).not.toBe(stale);
    const other = await startHarness();
    const foreign =
      (await other.call("POST", "/v1/licenses", other.admin, {})).headers.get("dpop-nonce") ?? "";
    expect(code(await send(fresh, await fresh.proof(h, { nonce: foreign || "x".repeat(27) })))).toBe(
      "ERR_DPOP_NONCE_REQUIRED",
    );
  });

  it("refuses malformed proofs: typ, alg, private or symmetric jwk, jwk alg or use, two proofs, long jti, wrong key, akt", async () => {
    const d = await primed();
    const claims = {
      htm: "POST",
      htu: `${h.url}/v1/licenses`,
      iat: h.clock.now(),
      jti: "0123456789abcdef0",
      akt: d.akt,
      nonce: d.nonce,
    };
    const priv = await crypto.subtle.exportKey(
      "jwk",
      (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign"])).privateKey,
    );
    const other = await TestDevice.create();
    const cases: [string, string | string[]][] = [
      [
        "typ JWT",
        await new SignJWT(claims)
          .setProtectedHeader({ alg: "ES256", typ: "JWT", jwk: d.signJwk })
          .sign(d.sign.privateKey),
      ],
      [
        "typ license+jwt",
        await new SignJWT(claims)
          .setProtectedHeader({ alg: "ES256", typ: "license+jwt", jwk: d.signJwk })
          .sign(d.sign.privateKey),
      ],
      [
        "alg HS256",
        await new SignJWT(claims)
          .setProtectedHeader({ alg: "HS256", typ: "dpop+jwt", jwk: { kty: "oct", k: "AAAA" } as never })
          .sign(new Uint8Array(32)),
      ],
      [
        "jwk with d",
        await new SignJWT(claims)
          .setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk: priv as never })
          .sign(d.sign.privateKey),
      ],
      [
        "no jwk",
        await new SignJWT(claims)
          .setProtectedHeader({ alg: "ES256", typ: "dpop+jwt" })
          .sign(d.sign.privateKey),
      ],
      [
        "signed by another key",
        await new SignJWT(claims)
          .setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk: d.signJwk })
          .sign(other.sign.privateKey),
      ],
      [
        "jwk alg ES384 (not the header's)",
        await new SignJWT(claims)
          .setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk: { ...d.signJwk, alg: "ES384" } })
          .sign(d.sign.privateKey),
      ],
      [
        "jwk use enc",
        await new SignJWT(claims)
          .setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk: { ...d.signJwk, use: "enc" } })
          .sign(d.sign.privateKey),
      ],
      ["two proofs", [await d.proof(h), await d.proof(h)]],
      ["jti of 200 characters", await d.proof(h, { jti: "j".repeat(200) })],
      ["jti too short", await d.proof(h, { jti: "short" })],
      [
        "akt of another key",
        await createDpopProof(d.sign.privateKey, d.signJwk, {
          htm: "POST",
          htu: `${h.url}/v1/licenses`,
          akt: other.akt,
          iat: h.clock.now(),
          ...(d.nonce ? { nonce: d.nonce } : {}),
        }),
      ],
      ["no proof", ""],
    ];
    // Where a later check would refuse the proof too, the reason shows the first one did.
    const reasons: Record<string, RegExp> = {
      "jwk with d": /jwk must be a public P-256 key/,
      "two proofs": /more than one DPoP proof/,
    };
    for (const [name, proof] of cases) {
      const r = await send(d, proof);
      expect(code(r), name).toBe("ERR_DPOP_INVALID");
      expect(r.status, name).toBe(401);
      if (reasons[name]) expect(r.body.error.data.reason, name).toMatch(reasons[name]);
    }
    const huge = await send(d, "a".repeat(12_000));
    expect(huge.status).toBe(431);
  });

  it("refuses a validly signed proof whose header also names a key source (jku, x5u, x5c) or zip/b64", async () => {
    const d = await primed();
    const proof = async (extra: Record<string, unknown>) =>
      new SignJWT({
        htm: "POST",
        htu: `${h.url}/v1/licenses`,
        iat: h.clock.now(),
        jti: crypto.randomUUID(),
        akt: d.akt,
        nonce: d.nonce,
      })
        .setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk: d.signJwk, ...extra } as never)
        .sign(d.sign.privateKey);
    for (const extra of [
      { jku: "https://evil.example/jwks" },
      { x5u: "https://evil.example/x" },
      { x5c: ["MIIB"] },
      { zip: "DEF" },
      { b64: true },
    ]) {
      const r = await send(d, await proof(extra));
      expect(code(r), JSON.stringify(extra)).toBe("ERR_DPOP_INVALID");
      expect(r.body.error.data.reason).toMatch(/must not carry/);
    }
    expect(code(await send(d, await proof({})))).toBe("ok"); // the control: the same proof, plain
  });

  it("a license bound to device A is refused on device B", async () => {
    const a = await primed();
    const r = await a.license(h, client.token, { model, manifestDigest: digest });
    const { verifyLicenseToken } = await import("../../src/core/license-token.js");
    const jwks = (await h.call("GET", "/.well-known/jwks.json")).body;
    const b = await TestDevice.create();
    await expect(
      verifyLicenseToken(r.body.license, {
        jwks,
        issuer: h.url,
        currentDate: new Date(h.clock.now() * 1000),
        deviceJkt: b.jkt,
      }),
    ).rejects.toMatchObject({
      code: "ERR_LICENSE_WRONG_DEVICE",
    });
    const { cekWrapInfo, unwrapContentKeyOnDevice } = await import("../../src/core/cek-wrap.js");
    const claims = JSON.parse(Buffer.from(r.body.license.split(".")[1], "base64url").toString());
    await expect(
      unwrapContentKeyOnDevice(
        b.agree.privateKey,
        claims.cek.epk,
        claims.cek.wrapped,
        cekWrapInfo(claims.jti, "digits", 1),
      ),
    ).rejects.toThrow();
  });
});
