import { CompactSign, exportJWK, generateKeyPair, importJWK, type JSONWebKeySet, SignJWT } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { utf8 } from "../../src/core/bytes.js";
import { checkJoseHeader } from "../../src/core/jose-header.js";
import { type EcJwk, jwkThumbprint } from "../../src/core/jwk.js";
import { LICENSE_AUDIENCE, verifyLicenseToken } from "../../src/core/license-token.js";
import { MANIFEST_FORMAT, type Manifest } from "../../src/core/manifest.js";
import { verifyManifest } from "../../src/core/manifest-jws.js";
import { TYP } from "../../src/core/token-types.js";
import { generateKeyPairJwk } from "../../src/pack/keygen.js";
import { verifyCheckpoint } from "../../src/server/audit/checkpoints.js";

/**
 * Every verifier refuses a token that is *validly signed by the right key* but whose header
 * names a key source (jku, x5u, x5c, jwk) or processing change (zip, b64). jose ignores most of
 * these members, so only our header check stands between them and acceptance: each case has a
 * control (the same token without the member) that is accepted, so the test fails if the check
 * is removed.
 */
const HOSTILE: Record<string, unknown>[] = [
  { jku: "https://evil.example/jwks.json" },
  { x5u: "https://evil.example/cert.pem" },
  { x5c: ["MIIB"] },
  { zip: "DEF" },
  { b64: true },
];

let attackerJwk: Record<string, unknown>;
beforeAll(async () => {
  attackerJwk = { ...(await exportJWK((await generateKeyPair("ES256")).publicKey)) };
});

describe("checkJoseHeader", () => {
  const rules = { alg: "ES256", typ: "x+jwt" } as const;
  it("pins alg, requires typ (application/ and case tolerated), refuses key-carrying members", () => {
    expect(checkJoseHeader({ alg: "ES256", typ: "x+jwt" }, rules)).toBeUndefined();
    expect(checkJoseHeader({ alg: "ES256", typ: "Application/X+JWT" }, rules)).toBeUndefined();
    for (const alg of ["none", "HS256", "ES384", "es256", undefined])
      expect(checkJoseHeader({ alg, typ: "x+jwt" }, rules)?.check).toBe("alg");
    for (const typ of ["JWT", "", undefined, "x+jwt2"])
      expect(checkJoseHeader({ alg: "ES256", typ }, rules)?.check).toBe("typ");
    for (const m of ["jku", "x5u", "x5c", "jwk", "crit", "b64", "zip"])
      expect(checkJoseHeader({ alg: "ES256", typ: "x+jwt", [m]: 1 }, rules)).toMatchObject({
        check: "forbidden",
        member: m,
      });
    expect(
      checkJoseHeader({ alg: "ES256", typ: "x+jwt", jwk: {} }, { ...rules, allowJwk: true }),
    ).toBeUndefined();
    expect(
      checkJoseHeader({ alg: "ES256", typ: "x+jwt", jku: "u" }, { ...rules, allowJwk: true })?.member,
    ).toBe("jku");
  });
});

describe("validly signed tokens with a hostile header member are refused by every verifier", () => {
  it("manifest", async () => {
    const publisher = await generateKeyPairJwk("sig");
    const kid = await jwkThumbprint(publisher.publicJwk);
    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      model: { id: "m", version: 1 },
      cipher: "A256GCM",
      contentKeyId: "AAAAAAAAAAAAAAAAAAAAAA",
      shardSize: 65536,
      size: 1,
      files: [
        {
          role: "graph",
          location: "m.onnx",
          size: 1,
          shards: [{ index: 0, size: 1, sha256: "a".repeat(64), iv: "BBBBBBBBBBBBBBBB" }],
        },
      ],
      signature: { inputs: [], outputs: [{ name: "y", type: "float32", shape: [1] }] },
      createdAt: "2026-11-27T00:00:00.000Z",
    };
    const sign = async (extra: Record<string, unknown>) =>
      new CompactSign(utf8(JSON.stringify(manifest)))
        .setProtectedHeader({ alg: "ES256", typ: TYP.manifest, kid, ...extra } as never)
        .sign(await importJWK(publisher.privateJwk, "ES256"));
    await expect(verifyManifest(await sign({}), [publisher.publicJwk])).resolves.toBeTruthy();
    for (const extra of [...HOSTILE, { jwk: attackerJwk }])
      await expect(
        verifyManifest(await sign(extra), [publisher.publicJwk]),
        JSON.stringify(extra),
      ).rejects.toMatchObject({ code: "ERR_MANIFEST_HEADER_FORBIDDEN" });
  });

  it("license", async () => {
    const pair = await generateKeyPair("ES256", { extractable: true });
    const pub = (await exportJWK(pair.publicKey)) as EcJwk;
    const kid = await jwkThumbprint(pub);
    const jwks: JSONWebKeySet = { keys: [{ ...pub, kid, alg: "ES256", use: "sig" }] };
    const now = 1_800_000_000;
    const claims = {
      iss: "https://l.example",
      sub: "p",
      aud: LICENSE_AUDIENCE,
      jti: "j",
      iat: now,
      nbf: now,
      exp: now + 600,
      cnf: { jkt: "d" },
      akt: "a",
      mdl: { id: "m", version: 1, digest: "x" },
      scope: "infer",
      quota: { allowance: 1, periodEnd: now + 1 },
      cek: { alg: "x", kid: "k", epk: { kty: "EC", crv: "P-256", x: "x", y: "y" }, wrapped: "w" },
      ent: "e",
    };
    const verify = async (extra: Record<string, unknown>) =>
      verifyLicenseToken(
        await new SignJWT(claims)
          .setProtectedHeader({ alg: "ES256", typ: TYP.license, kid, ...extra } as never)
          .sign(pair.privateKey),
        { jwks, issuer: claims.iss, currentDate: new Date(now * 1000) },
      );
    await expect(verify({})).resolves.toBeTruthy();
    for (const extra of [...HOSTILE, { jwk: pub }])
      await expect(verify(extra), JSON.stringify(extra)).rejects.toMatchObject({
        code: "ERR_LICENSE_INVALID",
      });
  });

  it("audit checkpoint", async () => {
    const pair = await generateKeyPair("ES256", { extractable: true });
    const pub = (await exportJWK(pair.publicKey)) as EcJwk;
    const kid = await jwkThumbprint(pub);
    const jwks: JSONWebKeySet = { keys: [{ ...pub, kid, alg: "ES256", use: "sig" }] };
    const token = async (extra: Record<string, unknown>) =>
      new SignJWT({ size: 3, head: "h", at: 5 })
        .setProtectedHeader({ alg: "ES256", typ: TYP.checkpoint, kid, ...extra } as never)
        .sign(pair.privateKey);
    await expect(verifyCheckpoint(await token({}), jwks)).resolves.toEqual({ size: 3, head: "h", at: 5 });
    for (const extra of [...HOSTILE, { jwk: pub }])
      await expect(verifyCheckpoint(await token(extra), jwks), JSON.stringify(extra)).rejects.toThrow(
        /checkpoint header/,
      );
  });
});
