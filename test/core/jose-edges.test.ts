import {
  CompactEncrypt,
  CompactSign,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JSONWebKeySet,
  SignJWT,
} from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { utf8 } from "../../src/core/bytes.js";
import { openContentKey, sealContentKey } from "../../src/core/content-key-jwe.js";
import { type EcJwk, jwkThumbprint } from "../../src/core/jwk.js";
import { LICENSE_AUDIENCE, verifyLicenseToken } from "../../src/core/license-token.js";
import { MANIFEST_FORMAT, type Manifest } from "../../src/core/manifest.js";
import { verifyManifest } from "../../src/core/manifest-jws.js";
import { TYP } from "../../src/core/token-types.js";
import { generateKeyPairJwk } from "../../src/pack/keygen.js";
import { verifyCheckpoint } from "../../src/server/audit/checkpoints.js";
import { b64json, signRaw } from "../helpers/jose-tricks.js";

/**
 * JOSE edges with *valid* structures and signatures (checklist A1, A3, A10–A13): a token that
 * verifies under the right key except for the one property under test, and a control that is
 * accepted, so each refusal is the verifier's doing and not a broken signature's.
 */
const NOW = 1_800_000_000;
const ISS = "https://licenses.example";
const ALGS = ["ES384", "ES512", "EdDSA", "PS256", "RS256"] as const;
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => "accepted",
    (e: { code?: string; message?: string }) => e.code ?? e.message,
  );

let signer: { privateKey: CryptoKey; pub: EcJwk; kid: string; jwks: JSONWebKeySet };
let publisher: Awaited<ReturnType<typeof generateKeyPairJwk>>;
let publisherKey: CryptoKey;
let publisherKid: string;

beforeAll(async () => {
  const pair = await generateKeyPair("ES256", { extractable: true });
  const pub = (await exportJWK(pair.publicKey)) as EcJwk;
  const kid = await jwkThumbprint(pub);
  signer = {
    privateKey: pair.privateKey,
    pub,
    kid,
    jwks: { keys: [{ ...pub, kid, alg: "ES256", use: "sig" }] },
  };
  publisher = await generateKeyPairJwk("sig");
  publisherKey = (await importJWK(publisher.privateJwk, "ES256")) as CryptoKey;
  publisherKid = await jwkThumbprint(publisher.publicJwk);
});

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

const licenseClaims = {
  iss: ISS,
  sub: "p",
  aud: LICENSE_AUDIENCE,
  jti: "j",
  iat: NOW,
  nbf: NOW,
  exp: NOW + 600,
  cnf: { jkt: "d" },
  akt: "a",
  mdl: { id: "m", version: 1, digest: "x" },
  scope: "infer",
  quota: { allowance: 1, periodEnd: NOW + 1 },
  cek: { alg: "x", kid: "k", epk: { kty: "EC", crv: "P-256", x: "x", y: "y" }, wrapped: "w" },
  ent: "e",
};

const verifyLicense = (token: string) =>
  codeOf(verifyLicenseToken(token, { jwks: signer.jwks, issuer: ISS, currentDate: new Date(NOW * 1000) }));
const verifyM = (token: string) => codeOf(verifyManifest(token, [publisher.publicJwk]));

describe("the algorithm matrix: only (kind, kid, ES256) verifies", () => {
  it.each(ALGS)("a license signed %s by an attacker key under our kid is refused", async (alg) => {
    const { privateKey } = await generateKeyPair(alg, { modulusLength: 2048 } as never);
    const token = await new SignJWT(licenseClaims)
      .setProtectedHeader({ alg, typ: TYP.license, kid: signer.kid })
      .sign(privateKey);
    expect(await verifyLicense(token)).toBe("ERR_LICENSE_INVALID");
  });

  it("the control: the same license signed ES256 by our key is accepted", async () => {
    const token = await new SignJWT(licenseClaims)
      .setProtectedHeader({ alg: "ES256", typ: TYP.license, kid: signer.kid })
      .sign(signer.privateKey);
    expect(await verifyLicense(token)).toBe("accepted");
  });

  it.each(ALGS)("an audit checkpoint signed %s under our kid is refused", async (alg) => {
    const { privateKey } = await generateKeyPair(alg, { modulusLength: 2048 } as never);
    const token = await new SignJWT({ size: 1, head: "h", at: 1 })
      .setProtectedHeader({ alg, typ: TYP.checkpoint, kid: signer.kid })
      .sign(privateKey);
    await expect(verifyCheckpoint(token, signer.jwks)).rejects.toThrow();
  });
});

describe("duplicate header members: last-wins, read the same by the header check and the signature check (RFC 7515 §4)", () => {
  it("manifest", async () => {
    const payload = JSON.stringify(manifest);
    const head = `"typ":"${TYP.manifest}","kid":"${publisherKid}"`;
    expect(await verifyM(await signRaw(publisherKey, `{"alg":"ES256",${head},"alg":"none"}`, payload))).toBe(
      "ERR_MANIFEST_ALG_NOT_ALLOWED",
    );
    expect(
      await verifyM(await signRaw(publisherKey, `{"alg":"ES256",${head},"typ":"license+jwt"}`, payload)),
    ).toBe("ERR_MANIFEST_TYP_INVALID");
    expect(await verifyM(await signRaw(publisherKey, `{"alg":"none",${head},"alg":"ES256"}`, payload))).toBe(
      "accepted",
    );
  });

  it("license", async () => {
    const payload = JSON.stringify(licenseClaims);
    const head = `"typ":"${TYP.license}","kid":"${signer.kid}"`;
    expect(
      await verifyLicense(await signRaw(signer.privateKey, `{"alg":"ES256",${head},"alg":"none"}`, payload)),
    ).toBe("ERR_LICENSE_INVALID");
    expect(
      await verifyLicense(await signRaw(signer.privateKey, `{"alg":"ES256",${head},"typ":"JWT"}`, payload)),
    ).toBe("ERR_LICENSE_INVALID");
    expect(
      await verifyLicense(await signRaw(signer.privateKey, `{"alg":"none",${head},"alg":"ES256"}`, payload)),
    ).toBe("accepted");
  });
});

describe("crit with a valid signature (RFC 7515 §4.1.11): refused, also where jose would process it", () => {
  const CRIT = ['"crit":["b64"],"b64":true', '"crit":[]', '"crit":["x-unknown"],"x-unknown":1'];

  it("manifest", async () => {
    const head = `"alg":"ES256","typ":"${TYP.manifest}","kid":"${publisherKid}"`;
    const payload = JSON.stringify(manifest);
    for (const extra of CRIT)
      expect(await verifyM(await signRaw(publisherKey, `{${head},${extra}}`, payload)), extra).toBe(
        "ERR_MANIFEST_HEADER_FORBIDDEN",
      );
    expect(await verifyM(await signRaw(publisherKey, `{${head}}`, payload))).toBe("accepted");
  });

  it("license", async () => {
    const head = `"alg":"ES256","typ":"${TYP.license}","kid":"${signer.kid}"`;
    const payload = JSON.stringify(licenseClaims);
    for (const extra of CRIT)
      expect(
        await verifyLicense(await signRaw(signer.privateKey, `{${head},${extra}}`, payload)),
        extra,
      ).toBe("ERR_LICENSE_INVALID");
    expect(await verifyLicense(await signRaw(signer.privateKey, `{${head}}`, payload))).toBe("accepted");
  });

  it("audit checkpoint", async () => {
    const head = `"alg":"ES256","typ":"${TYP.checkpoint}","kid":"${signer.kid}"`;
    const payload = JSON.stringify({ size: 1, head: "h", at: 1 });
    for (const extra of CRIT)
      await expect(
        verifyCheckpoint(await signRaw(signer.privateKey, `{${head},${extra}}`, payload), signer.jwks),
      ).rejects.toThrow();
    await expect(
      verifyCheckpoint(await signRaw(signer.privateKey, `{${head}}`, payload), signer.jwks),
    ).resolves.toEqual({
      size: 1,
      head: "h",
      at: 1,
    });
  });
});

describe("JWS and JWE are told apart (CVE-2023-51774): a well-formed JWE where a JWS is expected", () => {
  /** A real JWE of `payload`, with a header that copies the expected JWS header as far as JWE allows. */
  const jweOf = async (payload: unknown, header: Record<string, unknown>) => {
    const { publicKey } = await generateKeyPair("ECDH-ES+A256KW", { crv: "P-256" });
    return new CompactEncrypt(utf8(JSON.stringify(payload)))
      .setProtectedHeader({ alg: "ECDH-ES+A256KW", enc: "A256GCM", ...header } as never)
      .encrypt(publicKey);
  };

  it("manifest", async () => {
    const jwe = await jweOf(manifest, { typ: TYP.manifest, kid: publisherKid });
    expect(jwe.split(".")).toHaveLength(5);
    expect(await verifyM(jwe)).toBe("ERR_MANIFEST_MALFORMED");
  });

  it("license", async () => {
    const jwe = await jweOf(licenseClaims, { typ: TYP.license, kid: signer.kid });
    expect(await verifyLicense(jwe)).toBe("ERR_LICENSE_INVALID");
  });

  it("audit checkpoint", async () => {
    const jwe = await jweOf({ size: 1, head: "h", at: 1 }, { typ: TYP.checkpoint, kid: signer.kid });
    await expect(verifyCheckpoint(jwe, signer.jwks)).rejects.toThrow();
  });

  it("and a JWS where the content-key JWE is expected", async () => {
    const recipient = await generateKeyPairJwk("enc");
    const jws = await new CompactSign(utf8(JSON.stringify({ k: "A".repeat(43) })))
      .setProtectedHeader({ alg: "ES256" })
      .sign(publisherKey);
    expect(
      await codeOf(
        openContentKey(jws, recipient.privateJwk, { modelId: "m", modelVersion: 1, contentKeyId: "c" }),
      ),
    ).toBe("ERR_CONTENT_KEY_INVALID");
  });
});

describe("content-key JWE DoS is bounded (A12): algorithms are allow-listed before any key work", () => {
  const expect1 = { modelId: "m", modelVersion: 1, contentKeyId: "c" };

  it("PBES2 with p2c = 2^31 and a zip (DEF) JWE are refused at once, with no PBKDF2 or inflate", async () => {
    const recipient = await generateKeyPairJwk("enc");
    const rest = "AAAA.AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA";
    const pbes2 = `${b64json({ alg: "PBES2-HS512+A256KW", enc: "A256GCM", p2c: 2 ** 31, p2s: "AAAAAAAAAAAAAAAAAAAAAA" })}.${rest}`;
    const started = performance.now();
    expect(await codeOf(openContentKey(pbes2, recipient.privateJwk, expect1))).toBe(
      "ERR_CONTENT_KEY_INVALID",
    );
    expect(performance.now() - started).toBeLessThan(200);
    // A real ECDH-ES JWE to the right key, but compressed: refused though it would decrypt.
    const zipped = `${b64json({ alg: "ECDH-ES+A256KW", enc: "A256GCM", zip: "DEF", cty: "modelvault-content-key+json" })}.${rest}`;
    expect(await codeOf(openContentKey(zipped, recipient.privateJwk, expect1))).toBe(
      "ERR_CONTENT_KEY_INVALID",
    );
    for (const alg of ["RSA1_5", "RSA-OAEP", "dir", "A256KW", "ECDH-ES"]) {
      const other = `${b64json({ alg, enc: "A256GCM" })}.${rest}`;
      expect(await codeOf(openContentKey(other, recipient.privateJwk, expect1)), alg).toBe(
        "ERR_CONTENT_KEY_INVALID",
      );
    }
  });

  it("the control: a sealed content key opens", async () => {
    const recipient = await generateKeyPairJwk("enc");
    const jwe = await sealContentKey(
      { modelId: "m", modelVersion: 1, contentKeyId: "c", key: new Uint8Array(32).fill(1) },
      recipient.publicJwk,
    );
    expect((await openContentKey(jwe, recipient.privateJwk, expect1)).key).toEqual(
      new Uint8Array(32).fill(1),
    );
  });
});
