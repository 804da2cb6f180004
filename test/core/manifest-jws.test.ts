import { CompactSign, generateKeyPair, importJWK } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { fromBase64Url, toBase64Url, utf8 } from "../../src/core/bytes.js";
import type { EcJwk } from "../../src/core/jwk.js";
import { jwkThumbprint } from "../../src/core/jwk.js";
import { MANIFEST_FORMAT, type Manifest } from "../../src/core/manifest.js";
import { MANIFEST_TYP, signManifest, verifyManifest } from "../../src/core/manifest-jws.js";
import { generateKeyPairJwk } from "../../src/pack/keygen.js";

const sha = (c: string) => c.repeat(64);
const manifest: Manifest = {
  format: MANIFEST_FORMAT,
  model: { id: "digits", version: 3 },
  cipher: "A256GCM",
  contentKeyId: "AAAAAAAAAAAAAAAAAAAAAA",
  shardSize: 65536,
  size: 65537,
  files: [
    {
      role: "graph",
      location: "model.onnx",
      size: 65537,
      shards: [
        { index: 0, size: 65536, sha256: sha("a"), iv: "BBBBBBBBBBBBBBBB" },
        { index: 1, size: 1, sha256: sha("b"), iv: "CCCCCCCCCCCCCCCC" },
      ],
    },
  ],
  signature: {
    inputs: [{ name: "pixels", type: "float32", shape: ["batch", 784] }],
    outputs: [{ name: "probabilities", type: "float32", shape: ["batch", 10] }],
  },
  createdAt: "2026-11-27T00:00:00.000Z",
};

let publisher: { privateJwk: EcJwk; publicJwk: EcJwk };
let other: { privateJwk: EcJwk; publicJwk: EcJwk };
let jws: string;

beforeAll(async () => {
  publisher = await generateKeyPairJwk("sig");
  other = await generateKeyPairJwk("sig");
  jws = await signManifest(manifest, publisher.privateJwk);
});

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => "accepted",
    (e: { code?: string }) => e.code ?? String(e),
  );
const b64json = (v: unknown) => toBase64Url(utf8(JSON.stringify(v)));

/** Re-signs arbitrary header/payload with the real publisher key (a compromised-publisher view). */
async function signWith(
  header: Record<string, unknown>,
  payload: unknown,
  jwk: EcJwk = publisher.privateJwk,
) {
  return new CompactSign(utf8(JSON.stringify(payload)))
    .setProtectedHeader(header as never)
    .sign(await importJWK(jwk, "ES256"));
}

describe("manifest JWS", () => {
  it("verifies a good manifest and returns the publisher kid", async () => {
    const v = await verifyManifest(jws, [other.publicJwk, publisher.publicJwk]);
    expect(v.manifest).toEqual(manifest);
    expect(v.publisherKid).toBe(await jwkThumbprint(publisher.publicJwk));
  });

  it("accepts the application/ form of typ and any case (RFC 7515 §4.1.9), nothing else", async () => {
    const kid = await jwkThumbprint(publisher.publicJwk);
    for (const typ of [`application/${MANIFEST_TYP}`, MANIFEST_TYP.toUpperCase()]) {
      expect(
        await codeOf(
          verifyManifest(await signWith({ alg: "ES256", typ, kid }, manifest), [publisher.publicJwk]),
        ),
      ).toBe("accepted");
    }
    for (const typ of ["JWT", "license+jwt", "dpop+jwt", "", undefined, 1]) {
      const header: Record<string, unknown> = { alg: "ES256", kid };
      if (typ !== undefined) header.typ = typ;
      expect(await codeOf(verifyManifest(await signWith(header, manifest), [publisher.publicJwk]))).toBe(
        "ERR_MANIFEST_TYP_INVALID",
      );
    }
  });

  it.each(["none", "None", "nOnE", "NONE", "", undefined])(
    "refuses alg %s with empty and garbage signatures",
    async (alg) => {
      const header: Record<string, unknown> = {
        typ: MANIFEST_TYP,
        kid: await jwkThumbprint(publisher.publicJwk),
      };
      if (alg !== undefined) header.alg = alg;
      const [, payload, signature] = jws.split(".");
      for (const sig of ["", signature, "AAAA"]) {
        const token = `${b64json(header)}.${payload}.${sig}`;
        expect(await codeOf(verifyManifest(token, [publisher.publicJwk]))).toBe(
          "ERR_MANIFEST_ALG_NOT_ALLOWED",
        );
      }
    },
  );

  it("refuses HS256/384/512 tokens keyed with the publisher's public key (CVE-2015-9235)", async () => {
    const kid = await jwkThumbprint(publisher.publicJwk);
    const pub = publisher.publicJwk;
    const secrets = [
      utf8(JSON.stringify(pub)),
      utf8(JSON.stringify({ kty: "EC", crv: "P-256", x: pub.x, y: pub.y })),
      new Uint8Array([4, ...fromBase64Url(pub.x), ...fromBase64Url(pub.y)]),
    ];
    for (const alg of ["HS256", "HS384", "HS512"]) {
      for (const secret of secrets) {
        const token = await new CompactSign(utf8(JSON.stringify(manifest)))
          .setProtectedHeader({ alg, typ: MANIFEST_TYP, kid })
          .sign(secret);
        expect(await codeOf(verifyManifest(token, [pub]))).toBe("ERR_MANIFEST_ALG_NOT_ALLOWED");
      }
    }
  });

  it.each(["ES384", "ES512", "EdDSA", "PS256", "RS256"])(
    "refuses %s signed by an attacker key whose kid collides with ours",
    async (alg) => {
      const kid = await jwkThumbprint(publisher.publicJwk);
      const { privateKey } = await generateKeyPair(alg, { modulusLength: 2048 } as never);
      const token = await new CompactSign(utf8(JSON.stringify(manifest)))
        .setProtectedHeader({ alg, typ: MANIFEST_TYP, kid })
        .sign(privateKey);
      expect(await codeOf(verifyManifest(token, [publisher.publicJwk]))).toBe("ERR_MANIFEST_ALG_NOT_ALLOWED");
    },
  );

  it("refuses ES256 signed by another key under our kid", async () => {
    const kid = await jwkThumbprint(publisher.publicJwk);
    const forged = await signWith({ alg: "ES256", typ: MANIFEST_TYP, kid }, manifest, other.privateJwk);
    expect(await codeOf(verifyManifest(forged, [publisher.publicJwk]))).toBe(
      "ERR_MANIFEST_SIGNATURE_INVALID",
    );
  });

  it("refuses a manifest signed by an unpinned publisher key", async () => {
    const token = await signManifest(manifest, other.privateJwk);
    expect(await codeOf(verifyManifest(token, [publisher.publicJwk]))).toBe("ERR_MANIFEST_KEY_UNKNOWN");
  });

  it.each(["../../x", "' OR 1=1--", "k".repeat(10_000), "a\u0000b", "\u202eevil", undefined])(
    "treats kid %j as inert: unknown key",
    async (kid) => {
      const header: Record<string, unknown> = { alg: "ES256", typ: MANIFEST_TYP };
      if (kid !== undefined) header.kid = kid;
      expect(await codeOf(verifyManifest(await signWith(header, manifest), [publisher.publicJwk]))).toBe(
        "ERR_MANIFEST_KEY_UNKNOWN",
      );
    },
  );

  it.each([
    ["jku", "https://attacker.example/jwks.json"],
    ["x5u", "https://attacker.example/cert.pem"],
    ["jwk", { kty: "EC" }],
    ["x5c", ["MIIB"]],
    ["crit", ["exp"]],
    ["b64", false],
  ])("refuses a header carrying %s", async (name, value) => {
    const kid = await jwkThumbprint(publisher.publicJwk);
    const token = await signWith({ alg: "ES256", typ: MANIFEST_TYP, kid, [name]: value }, manifest).catch(
      // jose refuses to sign some of these itself; build those by hand with a garbage signature.
      () => `${b64json({ alg: "ES256", typ: MANIFEST_TYP, kid, [name]: value })}.${b64json(manifest)}.AAAA`,
    );
    expect(await codeOf(verifyManifest(token, [publisher.publicJwk]))).toBe("ERR_MANIFEST_HEADER_FORBIDDEN");
  });

  it("detects a change in every manifest field (signature invalid)", async () => {
    const [header, , signature] = jws.split(".");
    const leaves: string[][] = [];
    const walk = (v: unknown, path: string[]) => {
      if (v !== null && typeof v === "object") for (const [k, c] of Object.entries(v)) walk(c, [...path, k]);
      else leaves.push(path);
    };
    walk(manifest, []);
    expect(leaves.length).toBeGreaterThan(20);
    for (const path of leaves) {
      const copy = structuredClone(manifest) as unknown as Record<string, unknown>;
      let node = copy as Record<string, unknown>;
      for (const k of path.slice(0, -1)) node = node[k] as Record<string, unknown>;
      const last = path.at(-1) as string;
      const old = node[last];
      node[last] = typeof old === "number" ? old ^ 1 : typeof old === "string" ? flipChar(old) : old;
      const token = `${header}.${b64json(copy)}.${signature}`;
      expect(await codeOf(verifyManifest(token, [publisher.publicJwk])), path.join(".")).toBe(
        "ERR_MANIFEST_SIGNATURE_INVALID",
      );
    }
  });

  it("detects a flipped bit anywhere in the signature", async () => {
    const [h, p, s] = jws.split(".") as [string, string, string];
    const sig = fromBase64Url(s);
    for (const i of [0, 17, 31, 32, 63]) {
      const bad = Uint8Array.from(sig);
      bad[i] = (bad[i] as number) ^ 1;
      expect(await codeOf(verifyManifest(`${h}.${p}.${toBase64Url(bad)}`, [publisher.publicJwk]))).toBe(
        "ERR_MANIFEST_SIGNATURE_INVALID",
      );
    }
  });

  it("refuses malformed compact serialisations", async () => {
    const [h, p, s] = jws.split(".");
    for (const token of [
      `${h}.${p}`,
      `${h}.${p}.${s}.x`,
      `${h}.${p}.${s}é`,
      `{"payload":"${p}"}`,
      "",
      "a.b.c",
      `${h} .${p}.${s}`,
    ]) {
      expect(await codeOf(verifyManifest(token, [publisher.publicJwk])), token.slice(0, 30)).toMatch(
        /^ERR_MANIFEST_(MALFORMED|SIGNATURE_INVALID)$/,
      );
    }
    expect(await codeOf(verifyManifest("a".repeat(1024 * 1024 + 1), [publisher.publicJwk]))).toBe(
      "ERR_MANIFEST_TOO_LARGE",
    );
  });

  it("refuses five-segment (JWE-shaped) input as malformed, before reading its header", async () => {
    const [h, p, s] = jws.split(".");
    const jwe = `${b64json({ alg: "ECDH-ES", enc: "A256GCM" })}.a.b.c.d`;
    for (const token of [`${h}.${p}.${s}.x.y`, jwe]) {
      expect(
        await verifyManifest(token, [publisher.publicJwk]).catch((e) => e),
        token.slice(-8),
      ).toMatchObject({
        code: "ERR_MANIFEST_MALFORMED",
        message: "manifest is not a compact JWS",
      });
    }
  });

  it("a signature that is not base64url is malformed (not a bad signature), with jose's reason as the cause", async () => {
    const [h, p, s] = jws.split(".");
    const e = await verifyManifest(`${h}.${p}.${s}é`, [publisher.publicJwk]).catch((x) => x);
    expect(e).toMatchObject({
      code: "ERR_MANIFEST_MALFORMED",
      message: "manifest is not a well-formed compact JWS",
    });
    expect(e.cause).toBeInstanceOf(Error);
  });

  it("refuses a validly signed payload that breaks the schema, naming the field", async () => {
    const kid = await jwkThumbprint(publisher.publicJwk);
    const cases: [unknown, string][] = [
      [{ ...manifest, extra: 1 }, ""],
      [{ ...manifest, shardSize: 1024 }, "shardSize"],
      [{ ...manifest, size: 1 }, "size"],
      [{ ...manifest, model: { id: "../etc", version: 3 } }, ""],
      [{ ...manifest, files: [{ ...manifest.files[0], location: "../../x" }] }, "files.0.location"],
    ];
    for (const [payload, path] of cases) {
      const e = await verifyManifest(await signWith({ alg: "ES256", typ: MANIFEST_TYP, kid }, payload), [
        publisher.publicJwk,
      ]).catch((x) => x);
      expect(e.code).toMatch(/^ERR_(MANIFEST_MALFORMED|INVALID_ID)$/);
      if (path) expect(e.data.path).toBe(path);
    }
    const notJson = `${b64json({ alg: "ES256", typ: MANIFEST_TYP, kid })}.${toBase64Url(utf8("not json"))}.AAAA`;
    expect(await codeOf(verifyManifest(notJson, [publisher.publicJwk]))).toBe(
      "ERR_MANIFEST_SIGNATURE_INVALID",
    );
  });
});

function flipChar(s: string): string {
  if (s.length === 0) return "x";
  const c = s.charCodeAt(0) ^ 1;
  return String.fromCharCode(c) + s.slice(1);
}
