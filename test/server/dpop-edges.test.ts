import { CompactEncrypt, generateKeyPair } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { jwkThumbprint } from "../../src/core/jwk.js";
import { b64json, malleateEs256, reencodeSignature, signRaw } from "../helpers/jose-tricks.js";
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

async function primed(): Promise<TestDevice> {
  const d = await TestDevice.create();
  const r = await d.license(h, client.token, { model, manifestDigest: digest });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return d;
}

const send = (d: TestDevice, dpop: string, body: Record<string, unknown> = {}) =>
  h.call(
    "POST",
    "/v1/licenses",
    client.token,
    { model, manifestDigest: digest, agreementKey: d.agreeJwk, ...body },
    { dpop },
  );
const code = (r: { body: { error?: { code: string } } }) => r.body.error?.code ?? "ok";

/** Rows a refused request must not add to. */
async function counts() {
  const db = h.server.ctx.db.kysely;
  const n = async (t: "dpop_replay" | "devices" | "licenses" | "audit_log" | "anomalies") =>
    Number(
      (
        await db
          .selectFrom(t)
          .select((eb) => eb.fn.countAll().as("n"))
          .executeTakeFirstOrThrow()
      ).n,
    );
  return {
    replay: await n("dpop_replay"),
    devices: await n("devices"),
    licenses: await n("licenses"),
    audit: await n("audit_log"),
    anomalies: await n("anomalies"),
  };
}

/** The claims of a good proof for `d`, to sign by hand. */
const claimsOf = (d: TestDevice, over: Record<string, unknown> = {}) => ({
  htm: "POST",
  htu: `${h.url}/v1/licenses`,
  iat: h.clock.now(),
  jti: crypto.randomUUID(),
  akt: d.akt,
  nonce: d.nonce,
  ...over,
});

describe("DPoP edges: re-encoded proofs, invalid-curve keys, unsecured and odd headers", () => {
  it("a re-encoded proof (non-canonical base64url, or the malleated ECDSA signature r, n−s) is refused as a replay", async () => {
    const d = await primed();
    const proof = await d.proof(h);
    expect(code(await send(d, proof))).toBe("ok");
    for (const respelled of [reencodeSignature(proof), malleateEs256(proof)]) {
      expect(respelled).not.toBe(proof);
      const r = await send(d, respelled);
      expect(code(r), respelled.slice(-8)).toBe("ERR_DPOP_REPLAY");
    }
    // The control: a fresh proof from the same device is still accepted.
    expect(code(await send(d, await d.proof(h)))).toBe("ok");
  });

  it("an off-curve agreementKey answers 400 before anything is written (no replay entry, device, denial or license)", async () => {
    const d = await primed();
    // Coordinates of the right length that are not a point on P-256, with the proof's akt
    // matching them, so every earlier check passes.
    const offCurve = { kty: "EC", crv: "P-256", x: "A".repeat(43), y: "A".repeat(43) } as const;
    const fresh = await TestDevice.create();
    fresh.nonce = d.nonce;
    const proof = await fresh.proof(h, { akt: await jwkThumbprint(offCurve) });
    const before = await counts();
    const r = await send(fresh, proof, { agreementKey: offCurve });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: "ERR_REQUEST_INVALID", data: { path: "agreementKey" } });
    expect(await counts()).toEqual(before);
    // The same proof with a valid key would be refused only for its akt: it was never spent.
    expect(code(await send(fresh, proof))).toBe("ERR_DPOP_INVALID");
  });

  it.each(["none", "None", "nOnE", ""])(
    "a proof with alg %s (empty or garbage signature) is refused",
    async (alg) => {
      const d = await primed();
      const header = b64json({ alg, typ: "dpop+jwt", jwk: d.signJwk });
      for (const sig of ["", "AAAA"]) {
        const r = await send(d, `${header}.${b64json(claimsOf(d))}.${sig}`);
        expect(code(r)).toBe("ERR_DPOP_INVALID");
        expect(r.status).toBe(401);
      }
    },
  );

  it("duplicate header members: the last one is what both the header check and the signature check read", async () => {
    const d = await primed();
    const jwk = JSON.stringify(d.signJwk);
    const payload = () => JSON.stringify(claimsOf(d));
    const lastNone = await signRaw(
      d.sign.privateKey,
      `{"alg":"ES256","typ":"dpop+jwt","jwk":${jwk},"alg":"none"}`,
      payload(),
    );
    expect(code(await send(d, lastNone))).toBe("ERR_DPOP_INVALID");
    const lastTyp = await signRaw(
      d.sign.privateKey,
      `{"alg":"ES256","typ":"dpop+jwt","jwk":${jwk},"typ":"JWT"}`,
      payload(),
    );
    expect(code(await send(d, lastTyp))).toBe("ERR_DPOP_INVALID");
    // Last-wins is pinned (RFC 7515 §4 allows it): the last alg is ES256, and it verifies as ES256.
    const lastEs256 = await signRaw(
      d.sign.privateKey,
      `{"alg":"none","typ":"dpop+jwt","jwk":${jwk},"alg":"ES256"}`,
      payload(),
    );
    expect(code(await send(d, lastEs256))).toBe("ok");
  });

  it("crit is refused even where jose would honour it (crit: [b64] with b64: true), and crit: [] too", async () => {
    const d = await primed();
    const jwk = JSON.stringify(d.signJwk);
    for (const extra of ['"crit":["b64"],"b64":true', '"crit":[]']) {
      const proof = await signRaw(
        d.sign.privateKey,
        `{"alg":"ES256","typ":"dpop+jwt","jwk":${jwk},${extra}}`,
        JSON.stringify(claimsOf(d)),
      );
      const r = await send(d, proof);
      expect(code(r), extra).toBe("ERR_DPOP_INVALID");
    }
    // The control: the same hand-signed proof without crit is accepted.
    const plain = await signRaw(
      d.sign.privateKey,
      `{"alg":"ES256","typ":"dpop+jwt","jwk":${jwk}}`,
      JSON.stringify(claimsOf(d)),
    );
    expect(code(await send(d, plain))).toBe("ok");
  });

  it("a well-formed JWE where the DPoP proof (a JWS) is expected is refused", async () => {
    const d = await primed();
    const { publicKey } = await generateKeyPair("ECDH-ES+A256KW", { crv: "P-256" });
    const jwe = await new CompactEncrypt(new TextEncoder().encode(JSON.stringify(claimsOf(d))))
      .setProtectedHeader({ alg: "ECDH-ES+A256KW", enc: "A256GCM", typ: "dpop+jwt", jwk: d.signJwk } as never)
      .encrypt(publicKey);
    expect(jwe.split(".")).toHaveLength(5);
    const r = await send(d, jwe);
    expect(code(r)).toBe("ERR_DPOP_INVALID");
  });
});
