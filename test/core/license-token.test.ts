import { CompactSign, exportJWK, generateKeyPair, type JSONWebKeySet, SignJWT } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { fromBase64Url, toBase64Url, utf8 } from "../../src/core/bytes.js";
import { type EcJwk, jwkThumbprint } from "../../src/core/jwk.js";
import {
  LICENSE_AUDIENCE,
  type LicenseClaims,
  MAX_TOKEN_BYTES,
  verifyLicenseToken,
} from "../../src/core/license-token.js";
import { TYP } from "../../src/core/token-types.js";

const NOW = 1_800_000_000;
const ISS = "https://licenses.example";
let key: CryptoKey;
let pub: EcJwk;
let kid: string;
let jwks: JSONWebKeySet;
let claims: LicenseClaims;

beforeAll(async () => {
  const pair = await generateKeyPair("ES256", { extractable: true });
  key = pair.privateKey;
  pub = (await exportJWK(pair.publicKey)) as EcJwk;
  kid = await jwkThumbprint(pub);
  jwks = { keys: [{ ...pub, kid, alg: "ES256", use: "sig" }] };
  claims = {
    iss: ISS,
    sub: "p_client",
    aud: LICENSE_AUDIENCE,
    jti: "license-1",
    iat: NOW,
    nbf: NOW,
    exp: NOW + 600,
    cnf: { jkt: "device-a" },
    akt: "A".repeat(43),
    mdl: { id: "digits", version: 1, digest: "d".repeat(43) },
    scope: "infer offline",
    quota: { allowance: 10, periodEnd: NOW + 86400 },
    offline_until: NOW + 4200,
    cek: { alg: "x", kid: "k", epk: { kty: "EC", crv: "P-256", x: "x", y: "y" }, wrapped: "w" },
    ent: "e_1",
  };
});

const sign = (
  c: Record<string, unknown>,
  header: Record<string, unknown> = {},
  k: CryptoKey | Uint8Array = key,
) => new SignJWT(c).setProtectedHeader({ alg: "ES256", typ: TYP.license, kid, ...header } as never).sign(k);
const at = (t: number) => new Date(t * 1000);
const codeOf = (token: string, t = NOW, deviceJkt?: string) =>
  verifyLicenseToken(token, {
    jwks,
    issuer: ISS,
    currentDate: at(t),
    ...(deviceJkt ? { deviceJkt } : {}),
  }).then(
    () => "accepted",
    (e: { code?: string }) => e.code ?? String(e),
  );
const b64 = (v: unknown) => toBase64Url(utf8(JSON.stringify(v)));

describe("license JWT verification", () => {
  it("accepts a good license and binds it to the device", async () => {
    const t = await sign({ ...claims });
    expect(await codeOf(t, NOW, "device-a")).toBe("accepted");
    expect(await codeOf(t, NOW, "device-b")).toBe("ERR_LICENSE_WRONG_DEVICE");
  });

  it.each(["none", "None", "nOnE", "", undefined])("refuses alg %s", async (alg) => {
    const header: Record<string, unknown> = { typ: TYP.license, kid };
    if (alg !== undefined) header.alg = alg;
    for (const sig of ["", "AAAA"])
      expect(await codeOf(`${b64(header)}.${b64(claims)}.${sig}`)).toBe("ERR_LICENSE_INVALID");
  });

  it("refuses HS256 keyed with the server's public key (JWK JSON, PEM-ish, raw point)", async () => {
    const secrets = [
      utf8(JSON.stringify(pub)),
      utf8(`-----BEGIN PUBLIC KEY-----${pub.x}${pub.y}-----END PUBLIC KEY-----`),
      new Uint8Array([4, ...fromBase64Url(pub.x), ...fromBase64Url(pub.y)]),
    ];
    for (const alg of ["HS256", "HS384", "HS512"]) {
      for (const s of secrets) {
        const token = await new CompactSign(utf8(JSON.stringify(claims)))
          .setProtectedHeader({ alg, typ: TYP.license, kid })
          .sign(s);
        expect(await codeOf(token)).toBe("ERR_LICENSE_INVALID");
      }
    }
  });

  it("refuses unknown kid, attacker keys under our kid, and header-supplied keys", async () => {
    expect(await codeOf(await sign({ ...claims }, { kid: "unknown" }))).toBe("ERR_LICENSE_INVALID");
    const attacker = await generateKeyPair("ES256");
    expect(await codeOf(await sign({ ...claims }, {}, attacker.privateKey))).toBe("ERR_LICENSE_INVALID");
    const attackerJwk = await exportJWK(attacker.publicKey);
    for (const extra of [
      { jku: "http://127.0.0.1:1/jwks" },
      { x5u: "http://127.0.0.1:1/x" },
      { jwk: attackerJwk },
    ]) {
      expect(await codeOf(await sign({ ...claims }, extra, attacker.privateKey))).toBe("ERR_LICENSE_INVALID");
    }
  });

  it.each([TYP.manifest, TYP.dpop, TYP.usage, TYP.checkpoint, "JWT", "at+jwt"])(
    "refuses typ %s (only license+jwt)",
    async (typ) => {
      expect(await codeOf(await sign({ ...claims }, { typ }))).toBe("ERR_LICENSE_INVALID");
    },
  );

  it("accepts application/license+jwt as the same typ", async () => {
    expect(await codeOf(await sign({ ...claims }, { typ: "application/license+jwt" }))).toBe("accepted");
  });

  it("refuses wrong iss and aud (including an aud array naming another service)", async () => {
    expect(await codeOf(await sign({ ...claims, iss: "https://evil.example" }))).toBe("ERR_LICENSE_INVALID");
    expect(await codeOf(await sign({ ...claims, aud: "other-service" }))).toBe("ERR_LICENSE_INVALID");
    expect(await codeOf(await sign({ ...claims, aud: ["other-service"] }))).toBe("ERR_LICENSE_INVALID");
  });

  it("checks exp and nbf exactly at the boundary, with no tolerance", async () => {
    const t = await sign({ ...claims });
    expect(await codeOf(t, claims.exp - 1)).toBe("accepted");
    expect(await codeOf(t, claims.exp)).toBe("ERR_LICENSE_EXPIRED");
    const future = await sign({ ...claims, nbf: NOW + 10 });
    expect(await codeOf(future, NOW + 9)).toBe("ERR_LICENSE_INVALID");
    expect(await codeOf(future, NOW + 10)).toBe("accepted");
  });

  it.each([
    ["string", "1800000600"],
    ["1e309", Number.POSITIVE_INFINITY],
    ["float", NOW + 0.5],
    ["negative", -1],
  ])("refuses exp as %s", async (_, exp) => {
    const token = `${b64({ alg: "ES256", typ: TYP.license, kid })}.${b64({ ...claims, exp })}`;
    const signed = await sign({ ...claims, exp } as never).catch(() => `${token}.AAAA`);
    expect(await codeOf(signed)).toMatch(/^ERR_LICENSE_(INVALID|EXPIRED)$/);
  });

  it.each(["exp", "iat", "jti", "sub", "cnf", "aud", "cek", "mdl", "nbf"])(
    "refuses a license without %s",
    async (claim) => {
      const c: Record<string, unknown> = { ...claims };
      delete c[claim];
      expect(await codeOf(await sign(c))).toBe("ERR_LICENSE_INVALID");
    },
  );

  it("checks the signature before the claims: a forged expired token is invalid, not expired", async () => {
    const attacker = await generateKeyPair("ES256");
    const forged = await sign({ ...claims, exp: NOW - 100 }, {}, attacker.privateKey);
    expect(await codeOf(forged)).toBe("ERR_LICENSE_INVALID");
  });

  it("refuses a tampered payload", async () => {
    const [h, , s] = (await sign({ ...claims })).split(".");
    expect(await codeOf(`${h}.${b64({ ...claims, quota: { allowance: 1e9, periodEnd: NOW } })}.${s}`)).toBe(
      "ERR_LICENSE_INVALID",
    );
  });

  it("refuses a token over the size limit even when the issuer signed it", async () => {
    const big = await sign({ ...claims, pad: "x".repeat(MAX_TOKEN_BYTES) });
    expect(big.length).toBeGreaterThan(MAX_TOKEN_BYTES);
    await expect(verifyLicenseToken(big, { jwks, issuer: ISS, currentDate: at(NOW) })).rejects.toMatchObject({
      code: "ERR_LICENSE_INVALID",
      message: "license token missing or too large",
    });
  });

  it("refuses crit, oversized tokens and JWE-shaped input", async () => {
    const critical = `${b64({ alg: "ES256", typ: TYP.license, kid, crit: ["x"], x: 1 })}.${b64(claims)}.AAAA`;
    expect(await codeOf(critical)).toBe("ERR_LICENSE_INVALID");
    expect(await codeOf("a".repeat(20_000))).toBe("ERR_LICENSE_INVALID");
    expect(await codeOf("eyJhbGciOiJFQ0RILUVTIn0.a.b.c.d")).toBe("ERR_LICENSE_INVALID");
  });
});
