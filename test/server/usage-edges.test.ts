import { CompactEncrypt, CompactSign, generateKeyPair } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { utf8 } from "../../src/core/bytes.js";
import { TYP } from "../../src/core/token-types.js";
import { signUsageReport, usageGenesis, usageReportHash } from "../../src/core/usage-report.js";
import { b64json, malleateEs256, reencodeSignature, signRaw } from "../helpers/jose-tricks.js";
import { grant, type Harness, registerDigits, startHarness, TestDevice } from "./harness.js";

const model = { id: "digits", version: 1 };
let h: Harness;
let client: { id: string; token: string };
let digest: string;

beforeAll(async () => {
  h = await startHarness();
  const publisher = await h.principal("pub", ["publisher"]);
  const licensor = await h.principal("lic", ["licensor"]);
  client = await h.principal("client", ["client"]);
  ({ digest } = await registerDigits(h, publisher));
  await grant(h, licensor.token, client.id, { maxDevices: 50, licenseAllowance: 50 });
});

/** A licensed device and the claims of its first report. */
async function device() {
  const d = await TestDevice.create();
  const r = await d.license(h, client.token, { model, manifestDigest: digest });
  const jti = JSON.parse(Buffer.from(r.body.license.split(".")[1], "base64url").toString()).jti as string;
  const claims = {
    lic: jti,
    seq: 1,
    prev: await usageGenesis(d.jkt),
    count: 1,
    from: h.clock.now() - 10,
    to: h.clock.now(),
    iat: h.clock.now(),
  };
  return { d, jti, claims };
}
const post = (reports: string[]) => h.call("POST", "/v1/usage", client.token, { reports });
const first = (r: { body: { results: { status: string; code?: string }[] } }) =>
  r.body.results[0] as { status: string; code?: string };
const used = async (jti: string) =>
  (
    await h.server.ctx.db.kysely
      .selectFrom("licenses")
      .select("used")
      .where("jti", "=", jti)
      .executeTakeFirstOrThrow()
  ).used;

describe("usage-report verification edges (A1, A3, A4, A10–A14)", () => {
  it.each(["none", "None", "nOnE", ""])("alg %s (empty and garbage signatures) is refused", async (alg) => {
    const { d, claims } = await device();
    for (const sig of ["", "AAAA"]) {
      const token = `${b64json({ alg, typ: TYP.usage, kid: d.jkt })}.${b64json(claims)}.${sig}`;
      expect(first(await post([token]))).toMatchObject({ status: "rejected", code: "ERR_USAGE_INVALID" });
    }
  });

  it("only typ modelvault-usage+jwt: a report signed by the device key under another typ, or none, is refused", async () => {
    const { d, claims } = await device();
    const signed = (typ: string | undefined) =>
      new CompactSign(utf8(JSON.stringify(claims)))
        .setProtectedHeader({ alg: "ES256", kid: d.jkt, ...(typ !== undefined ? { typ } : {}) })
        .sign(d.sign.privateKey);
    for (const typ of [TYP.license, TYP.dpop, TYP.manifest, TYP.checkpoint, "JWT", "", undefined])
      expect(first(await post([await signed(typ)])), String(typ)).toMatchObject({
        status: "rejected",
        code: "ERR_USAGE_INVALID",
      });
    // The control, and the application/ spelling of the same typ (RFC 7515 §4.1.9).
    expect(first(await post([await signed(`application/${TYP.usage}`)])).status).toBe("accepted");
  });

  it.each(["ES384", "ES512", "EdDSA", "PS256", "RS256", "HS256"])(
    "a report signed %s by an attacker key under the device's kid is refused",
    async (alg) => {
      const { d, jti, claims } = await device();
      const key =
        alg === "HS256"
          ? utf8(JSON.stringify(d.signJwk))
          : (await generateKeyPair(alg, { modulusLength: 2048 } as never)).privateKey;
      const token = await new CompactSign(utf8(JSON.stringify({ ...claims, count: 40 })))
        .setProtectedHeader({ alg, typ: TYP.usage, kid: d.jkt })
        .sign(key);
      expect(first(await post([token]))).toMatchObject({ status: "rejected", code: "ERR_USAGE_INVALID" });
      expect(await used(jti)).toBe(0);
    },
  );

  it("duplicate header members: last-wins, the same for the header check and the signature check", async () => {
    const { d, claims } = await device();
    const head = `"typ":"${TYP.usage}","kid":"${d.jkt}"`;
    const payload = JSON.stringify(claims);
    for (const raw of [`{"alg":"ES256",${head},"alg":"none"}`, `{"alg":"ES256",${head},"typ":"JWT"}`])
      expect(first(await post([await signRaw(d.sign.privateKey, raw, payload)])), raw).toMatchObject({
        code: "ERR_USAGE_INVALID",
      });
    const lastEs256 = await signRaw(d.sign.privateKey, `{"alg":"none",${head},"alg":"ES256"}`, payload);
    expect(first(await post([lastEs256])).status).toBe("accepted");
  });

  it("crit (also crit: [b64] with b64: true, which jose would process) is refused with a valid signature", async () => {
    const { d, claims } = await device();
    const head = `"alg":"ES256","typ":"${TYP.usage}","kid":"${d.jkt}"`;
    const payload = JSON.stringify(claims);
    for (const extra of ['"crit":["b64"],"b64":true', '"crit":[]'])
      expect(
        first(await post([await signRaw(d.sign.privateKey, `{${head},${extra}}`, payload)])),
        extra,
      ).toMatchObject({ code: "ERR_USAGE_INVALID" });
    expect(first(await post([await signRaw(d.sign.privateKey, `{${head}}`, payload)])).status).toBe(
      "accepted",
    );
  });

  it("a well-formed JWE where a report (a JWS) is expected is refused", async () => {
    const { d, claims } = await device();
    const { publicKey } = await generateKeyPair("ECDH-ES+A256KW", { crv: "P-256" });
    const jwe = await new CompactEncrypt(utf8(JSON.stringify(claims)))
      .setProtectedHeader({ alg: "ECDH-ES+A256KW", enc: "A256GCM", typ: TYP.usage, kid: d.jkt } as never)
      .encrypt(publicKey);
    expect(first(await post([jwe]))).toMatchObject({ status: "rejected", code: "ERR_USAGE_INVALID" });
  });

  it("a re-encoded report (non-canonical base64url, malleated signature) is the same report: a duplicate, counted once", async () => {
    const { d, jti, claims } = await device();
    const token = await signUsageReport(d.sign.privateKey, d.jkt, { ...claims, count: 7 });
    expect(first(await post([token])).status).toBe("accepted");
    for (const respelled of [reencodeSignature(token), malleateEs256(token)]) {
      expect(respelled).not.toBe(token);
      expect(first(await post([respelled])).status).toBe("duplicate");
    }
    expect(await used(jti)).toBe(7);
    const anomalies = await h.server.ctx.db.kysely
      .selectFrom("anomalies")
      .select("kind")
      .where("device_id", "=", d.jkt)
      .execute();
    expect(anomalies).toEqual([]);
    expect(await usageReportHash(malleateEs256(token))).toBe(await usageReportHash(token));
  });

  it("a report whose prev breaks the chain is refused and kept, as signed, as evidence of the fork", async () => {
    const { d, claims } = await device();
    expect(first(await post([await signUsageReport(d.sign.privateKey, d.jkt, claims)])).status).toBe(
      "accepted",
    );
    const forked = await signUsageReport(d.sign.privateKey, d.jkt, {
      ...claims,
      seq: 2,
      prev: "A".repeat(43),
    });
    expect(first(await post([forked]))).toMatchObject({ code: "ERR_USAGE_FORK" });
    expect(first(await post([forked]))).toMatchObject({ code: "ERR_USAGE_FORK" }); // sent again: kept once
    const kept = await h.server.ctx.db.kysely
      .selectFrom("usage_evidence")
      .select(["seq", "kind", "token"])
      .where("device_id", "=", d.jkt)
      .execute();
    expect(kept).toEqual([{ seq: 2, kind: "usage_fork", token: forked }]);
  });
});
