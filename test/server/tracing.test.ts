import { beforeAll, describe, expect, it } from "vitest";
import { unwrapKeysOnDevice } from "../../src/core/cek-wrap.js";
import { CONTENT_KEY_CTY } from "../../src/core/content-key-jwe.js";
import { sha256Hex } from "../../src/core/digest.js";
import { type LicenseClaims, MAX_TOKEN_BYTES, verifyLicenseToken } from "../../src/core/license-token.js";
import {
  decodeBits,
  slotKeyBytes,
  splitWrappedKeys,
  TRACE_WRAP_ALG,
  traceWrapInfo,
} from "../../src/core/tracing/slot-keys.js";
import { biasCutoff, drawCodeword, innocentBound, pirateBits, score } from "../../src/core/tracing/tardos.js";
import { generateKeyPairJwk } from "../../src/pack/keygen.js";
import { kekContext } from "../../src/server/policy/kek-context.js";
import { codewordBits } from "../../src/server/tracing/codewords.js";
import { traceKekContext } from "../../src/server/tracing/trace-secret.js";
import { DIALECTS, freshPostgres } from "./databases.js";
import { grant, type Harness, startHarness, TestDevice } from "./harness.js";
import { type Package, register, seal, traceableManifest } from "./traceable.js";

const SLOTS = 256;
const MODEL = { id: "traced", version: 1 };
type Who = { id: string; token: string };

describe.each(DIALECTS)("traceable licenses (%s)", (dialect) => {
  let h: Harness;
  let owner: Who;
  let rival: Who;
  let licensor: Who;
  let auditor: Who;
  let clientA: Who;
  let clientB: Who;
  let keys: {
    privateJwk: import("../../src/core/jwk.js").EcJwk;
    publicJwk: import("../../src/core/jwk.js").EcJwk;
  };
  let traced: Package;
  let digest: string;
  let plainDigest: string;
  const devices: Record<string, TestDevice> = {};

  const audit = async (action: string) =>
    h.server.ctx.db.kysely
      .selectFrom("audit_log")
      .selectAll()
      .where("action", "=", action)
      .orderBy("seq")
      .execute();
  const codewordOf = async (device: TestDevice, model = MODEL) =>
    (
      await h.server.ctx.db.kysely
        .selectFrom("trace_codewords")
        .selectAll()
        .where("model_id", "=", model.id)
        .where("version", "=", model.version)
        .where("device_id", "=", device.jkt)
        .execute()
    ).map((r) => r.codeword);
  const holderCount = async () =>
    (
      await h.server.ctx.db.kysely
        .selectFrom("trace_codewords")
        .select("device_id")
        .where("model_id", "=", MODEL.id)
        .where("version", "=", MODEL.version)
        .execute()
    ).length;
  const licenseFor = async (device: TestDevice, who: Who, model = MODEL, manifestDigest = digest) => {
    const r = await device.license(h, who.token, { model, manifestDigest });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const jwks = (await h.call("GET", "/.well-known/jwks.json")).body;
    const claims = await verifyLicenseToken(r.body.license, {
      jwks,
      issuer: h.url,
      currentDate: new Date(h.clock.now() * 1000),
      deviceJkt: device.jkt,
    });
    return { token: r.body.license as string, claims };
  };
  const trace = (who: string, body: unknown, model = MODEL) =>
    h.call("POST", `/v1/models/${model.id}/versions/${model.version}/traces`, who, body);
  const readsOf = (bits: string) => Array.from(bits, (b) => (b === "1" ? 1 : -1));

  beforeAll(async () => {
    h = await startHarness(dialect === "postgres" ? { database: await freshPostgres() } : {});
    owner = await h.principal("owner", ["publisher"]);
    rival = await h.principal("rival", ["publisher"]);
    licensor = await h.principal("lic", ["licensor"]);
    auditor = await h.principal("aud", ["auditor"]);
    clientA = await h.principal("client-a", ["client"]);
    clientB = await h.principal("client-b", ["client"]);
    keys = await generateKeyPairJwk("sig");
    for (const p of [owner, rival]) {
      const own = p === owner ? keys : await generateKeyPairJwk("sig");
      const r = await h.call("POST", "/v1/admin/publisher-keys", h.admin, {
        jwk: own.publicJwk,
        principalId: p.id,
      });
      expect(r.status).toBe(201);
    }
    traced = await seal(h, traceableManifest(MODEL.id, MODEL.version, SLOTS), keys.privateJwk);
    const r = await register(h, owner.token, traced, traced.traceKey);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body.traceSlots).toBe(SLOTS);
    digest = r.body.manifestDigest;
    const plain = await seal(h, traceableManifest("plain", 1), keys.privateJwk);
    const p = await register(h, owner.token, plain);
    expect(p.status, JSON.stringify(p.body)).toBe(201);
    expect(p.body.traceSlots).toBeUndefined();
    plainDigest = p.body.manifestDigest;
    for (const [who, model] of [
      [clientA, "traced"],
      [clientB, "traced"],
      [clientA, "plain"],
    ] as const)
      await grant(h, licensor.token, who.id, { modelId: model, maxDevices: 5 });
    for (const name of ["a", "b", "c"]) devices[name] = await TestDevice.create();
  });

  describe("registration", () => {
    it("keeps the trace secret under the KEK in its own context, with biases for 3 colluders, audited with traceSlots", async () => {
      const row = await h.server.ctx.db.kysely
        .selectFrom("model_traces")
        .selectAll()
        .where("model_id", "=", MODEL.id)
        .executeTakeFirstOrThrow();
      expect(row).toMatchObject({ version: 1, slots: SLOTS, colluders: 3, kek_id: h.server.ctx.keys.kek.id });
      const biases = JSON.parse(row.biases) as number[];
      expect(biases).toHaveLength(SLOTS);
      for (const p of biases) {
        expect(p).toBeGreaterThanOrEqual(biasCutoff(3) - 1e-12);
        expect(p).toBeLessThanOrEqual(1 - biasCutoff(3) + 1e-12);
      }
      const model = { id: MODEL.id, version: 1, content_key_id: traced.manifest.contentKeyId };
      const kek = h.server.ctx.keys.kek;
      expect(await kek.decrypt(row.wrapped_secret, traceKekContext(model))).toEqual(traced.secret);
      // The content key's context does not open it (and vice versa): neither passes for the other.
      await expect(kek.decrypt(row.wrapped_secret, kekContext(model))).rejects.toThrow();
      const registered = (await audit("model.register")).find((e) => e.subject === "traced@1");
      expect(JSON.parse(registered?.detail ?? "{}").traceSlots).toBe(SLOTS);
      const plain = (await audit("model.register")).find((e) => e.subject === "plain@1");
      expect(JSON.parse(plain?.detail ?? "{}")).not.toHaveProperty("traceSlots");
    });

    it("refuses a traceable manifest without its trace key, with a foreign, mis-typed or misdirected one, or one equal to the content key; and a trace key for an untraceable manifest", async () => {
      const manifest = traceableManifest("refused", 1, 16);
      const good = await seal(h, manifest, keys.privateJwk);
      const otherServer = (await generateKeyPairJwk("enc")).publicJwk;
      const { sealContentKey } = await import("../../src/core/content-key-jwe.js");
      const misdirected = await sealContentKey(
        { modelId: "refused", modelVersion: 1, contentKeyId: manifest.contentKeyId, key: good.secret },
        otherServer,
        "modelvault-trace-key+json",
      );
      const sameAsCek = await seal(h, manifest, keys.privateJwk);
      const withCekAsSecret = await seal(h, manifest, keys.privateJwk, { secret: sameAsCek.cek });
      const cases: [string, Package, string | undefined][] = [
        ["missing", good, undefined],
        [
          "another version",
          good,
          (await seal(h, manifest, keys.privateJwk, { traceFor: { version: 2 } })).traceKey,
        ],
        [
          "another model",
          good,
          (await seal(h, manifest, keys.privateJwk, { traceFor: { id: "traced" } })).traceKey,
        ],
        [
          "another content key id",
          good,
          (await seal(h, traceableManifest("refused", 1, 16), keys.privateJwk)).traceKey,
        ],
        [
          "the content key's type",
          good,
          (await seal(h, manifest, keys.privateJwk, { traceCty: CONTENT_KEY_CTY })).traceKey,
        ],
        ["the content key itself", good, good.contentKey],
        ["sealed to another server", good, misdirected],
        [
          "the content key's bytes",
          { ...sameAsCek, contentKey: sameAsCek.contentKey },
          withCekAsSecret.traceKey,
        ],
      ];
      for (const [what, pkg, traceKey] of cases) {
        const r = await register(h, owner.token, pkg, traceKey);
        expect(r.status, what).toBe(400);
        expect(r.body.error.code, what).toBe("ERR_TRACE_KEY_INVALID");
      }
      const oversized = await register(h, owner.token, good, "x".repeat(4097));
      expect(oversized.status).toBe(400);
      expect(oversized.body.error).toMatchObject({ code: "ERR_REQUEST_INVALID", data: { path: "traceKey" } });
      const plain = await seal(h, traceableManifest("refused-plain", 1), keys.privateJwk);
      const r = await register(h, owner.token, plain, good.traceKey);
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe("ERR_TRACE_KEY_INVALID");
      const db = h.server.ctx.db.kysely;
      expect(await db.selectFrom("models").select("id").where("id", "like", "refused%").execute()).toEqual(
        [],
      );
      expect(
        await db
          .selectFrom("model_traces")
          .select("model_id")
          .where("model_id", "like", "refused%")
          .execute(),
      ).toEqual([]);
      // The right key registers.
      expect((await register(h, owner.token, good, good.traceKey)).status).toBe(201);
    });
  });

  describe("issuance", () => {
    it("puts in the license exactly one wrapped key per slot, each K(i, x_i) of the device's codeword and never the other variant's", async () => {
      const device = devices.a as TestDevice;
      const { claims } = await licenseFor(device, clientA);
      const trc = claims.trc as NonNullable<LicenseClaims["trc"]>;
      expect(trc.alg).toBe(TRACE_WRAP_ALG);
      expect(trc.slots).toBe(SLOTS);
      const bits = decodeBits(trc.bits, SLOTS);
      expect(await codewordOf(device)).toEqual([Array.from(bits).join("")]);
      const wrapped = splitWrappedKeys(trc.keys, SLOTS);
      expect(wrapped).toHaveLength(SLOTS);
      const unwrapped = await unwrapKeysOnDevice(
        device.agree.privateKey,
        trc.epk,
        wrapped,
        traceWrapInfo(claims.jti, MODEL.id, MODEL.version),
      );
      const iv = new Uint8Array(12);
      const probe = new TextEncoder().encode("slot");
      const opens = async (key: CryptoKey, raw: Uint8Array) => {
        const k = await crypto.subtle.importKey("raw", raw as Uint8Array<ArrayBuffer>, "AES-GCM", false, [
          "encrypt",
        ]);
        const sealed = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, k, probe);
        return crypto.subtle.decrypt({ name: "AES-GCM", iv }, key, sealed).then(
          () => true,
          () => false,
        );
      };
      const wrong: number[] = [];
      for (let i = 0; i < SLOTS; i++) {
        const bit = bits[i] as 0 | 1;
        const key = unwrapped[i] as CryptoKey;
        if (!(await opens(key, await slotKeyBytes(traced.secret, MODEL, i, bit)))) wrong.push(i);
        if (await opens(key, await slotKeyBytes(traced.secret, MODEL, i, (1 - bit) as 0 | 1)))
          wrong.push(-i - 1);
      }
      expect(wrong).toEqual([]);
      // Both values occur in the codeword: the check above saw both variants' keys.
      expect(new Set(bits).size).toBe(2);
      // The assignment is audited once: device, model and entitlement, never the codeword.
      const assigned = (await audit("trace.assign")).filter((e) => e.subject === device.jkt);
      expect(assigned).toHaveLength(1);
      expect(assigned[0]?.actor).toBe(clientA.id);
      expect(Object.keys(JSON.parse(assigned[0]?.detail ?? "{}")).sort()).toEqual(["entitlement", "model"]);
      expect(JSON.parse(assigned[0]?.detail ?? "{}").model).toBe("traced@1");
      expect(assigned[0]?.detail).not.toContain(Array.from(bits).join(""));
    });

    it("keeps a device's codeword across renewals and gives another device another", async () => {
      const a = devices.a as TestDevice;
      const first = await codewordOf(a);
      h.clock.advance(30);
      const renewed = await licenseFor(a, clientA);
      expect(Array.from(decodeBits((renewed.claims.trc as { bits: string }).bits, SLOTS)).join("")).toBe(
        first[0],
      );
      expect(await codewordOf(a)).toEqual(first);
      expect((await audit("trace.assign")).filter((e) => e.subject === a.jkt)).toHaveLength(1);
      const b = devices.b as TestDevice;
      const other = await licenseFor(b, clientB);
      expect(other.claims.trc?.bits).not.toBe(renewed.claims.trc?.bits);
      expect((await codewordOf(b))[0]).not.toBe(first[0]);
    });

    it("gives concurrent first licenses of one device one codeword", async () => {
      const c = devices.c as TestDevice;
      // A fresh nonce, so that every concurrent request goes through at the first attempt.
      const nonce = (await h.call("POST", "/v1/licenses", clientA.token, {})).headers.get("dpop-nonce");
      c.nonce = nonce ?? undefined;
      const results = await Promise.all(
        [1, 2, 3, 4].map(() => c.license(h, clientA.token, { model: MODEL, manifestDigest: digest })),
      );
      for (const r of results) expect(r.status, JSON.stringify(r.body)).toBe(200);
      const bits = results.map(
        (r) => JSON.parse(Buffer.from(r.body.license.split(".")[1], "base64url").toString()).trc.bits,
      );
      expect(new Set(bits).size).toBe(1);
      expect(await codewordOf(c)).toHaveLength(1);
      expect((await audit("trace.assign")).filter((e) => e.subject === c.jkt)).toHaveLength(1);
    });

    it("assigns no codeword to a refused request (the assignment commits with the license or not at all)", async () => {
      const late = await h.principal("late", ["client"]);
      await grant(h, licensor.token, late.id, { modelId: MODEL.id, maxDevices: 1 });
      const [first, second] = [await TestDevice.create(), await TestDevice.create()];
      await licenseFor(first, late);
      const refused = await second.license(h, late.token, { model: MODEL, manifestDigest: digest });
      expect(refused.body.error.code).toBe("ERR_DEVICE_LIMIT");
      expect(await codewordOf(second)).toEqual([]);
      expect((await audit("trace.assign")).filter((e) => e.subject === second.jkt)).toEqual([]);
    });

    it("gives an untraceable model's license no trace claim and assigns nothing", async () => {
      const { claims } = await licenseFor(
        devices.a as TestDevice,
        clientA,
        { id: "plain", version: 1 },
        plainDigest,
      );
      expect(claims.trc).toBeUndefined();
      expect(await codewordOf(devices.a as TestDevice, { id: "plain", version: 1 })).toEqual([]);
    });

    it(`issues a license for ${512} slots within the token limit (timing printed)`, async () => {
      const big = await seal(h, traceableManifest("traced-512", 1, 512), keys.privateJwk);
      const r = await register(h, owner.token, big, big.traceKey);
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      await grant(h, licensor.token, clientB.id, { modelId: "traced-512" });
      const model = { id: "traced-512", version: 1 };
      const timings: number[] = [];
      for (const _ of [1, 2, 3]) {
        const device = await TestDevice.create();
        await device.license(h, clientB.token, {
          model: { id: "none", version: 1 },
          manifestDigest: "A".repeat(43),
        });
        const started = performance.now();
        const { token, claims } = await licenseFor(device, clientB, model, r.body.manifestDigest);
        timings.push(performance.now() - started);
        expect(claims.trc?.slots).toBe(512);
        expect(token.length).toBeLessThan(MAX_TOKEN_BYTES);
      }
      const plain = await TestDevice.create();
      await plain.license(h, clientA.token, {
        model: { id: "none", version: 1 },
        manifestDigest: "A".repeat(43),
      });
      const started = performance.now();
      await licenseFor(plain, clientA, { id: "plain", version: 1 }, plainDigest);
      const baseline = performance.now() - started;
      console.log(
        `[${dialect}] first license with 512 trace slots: ${timings.map((t) => t.toFixed(0)).join(", ")} ms ` +
          `(untraceable model: ${baseline.toFixed(0)} ms; through HTTP, incl. verifying the token)`,
      );
    });
  });

  describe("tracing", () => {
    const bitsOf = async (d: string) => (await codewordOf(devices[d] as TestDevice))[0] as string;

    it("traces a copy leaked as it was to its device alone, with its principal, entitlement, licenses and an audited verdict", async () => {
      const a = await bitsOf("a");
      const r = await trace(owner.token, { reads: readsOf(a) });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      const holders = r.body.holders as number;
      expect(holders).toBe(await holderCount());
      expect(r.body).toMatchObject({
        model: MODEL,
        slots: SLOTS,
        readable: SLOTS,
        erased: 0,
        epsilon: 1e-3,
        verdict: "accused",
      });
      expect(r.body.accused.map((x: { device: string }) => x.device)).toEqual([devices.a?.jkt]);
      const accused = r.body.accused[0];
      const licenses = await h.server.ctx.db.kysely
        .selectFrom("licenses")
        .select("jti")
        .where("device_id", "=", devices.a?.jkt as string)
        .where("model_id", "=", MODEL.id)
        .orderBy("issued_at")
        .execute();
      expect(accused.principal).toBe(clientA.id);
      expect(accused.entitlement).toMatch(/.+/);
      expect(accused.licenses).toEqual(licenses.map((l) => l.jti));
      expect(accused.licenses).toHaveLength(2);
      expect(accused.bound).toBeLessThanOrEqual(1e-3 / holders);
      expect(accused.empirical).toBeGreaterThan(0);
      expect(accused.empirical).toBeLessThan(1e-3);
      // Nothing about holders not accused: their scores would let a caller probe codewords.
      expect(r.body.ranking).toBeUndefined();
      expect(r.body.accused).toHaveLength(1);
      const run = (await audit("trace.run")).at(-1);
      expect(run).toMatchObject({ actor: owner.id, subject: "traced@1", outcome: "success" });
      expect(JSON.parse(run?.detail ?? "{}")).toEqual({
        readable: SLOTS,
        erased: 0,
        verdict: "accused",
        accused: [devices.a?.jkt],
        epsilon: 1e-3,
        erase: 0.5,
        readsSha256: await sha256Hex(new TextEncoder().encode(JSON.stringify(readsOf(await bitsOf("a"))))),
      });
    });

    it("accuses A and/or B, and no innocent, for a copy averaging theirs", async () => {
      const [a, b] = [await bitsOf("a"), await bitsOf("b")];
      const reads = Array.from(a, (x, i) => (x === b[i] ? (x === "1" ? 1 : -1) : 0));
      const r = await trace(auditor.token, { reads });
      expect(r.status).toBe(200);
      expect(r.body.erased).toBe(reads.filter((x) => x === 0).length);
      expect(r.body.verdict).toBe("accused");
      for (const x of r.body.accused) expect([devices.a?.jkt, devices.b?.jkt]).toContain(x.device);
    });

    it("accuses nobody for a copy with no readable mark, an unlisted device's copy, or noise", async () => {
      const biases = JSON.parse(
        (
          await h.server.ctx.db.kysely
            .selectFrom("model_traces")
            .select("biases")
            .where("model_id", "=", MODEL.id)
            .executeTakeFirstOrThrow()
        ).biases,
      ) as number[];
      const stranger = Array.from(drawCodeword(biases, Math.random), (x) => (x ? 1 : -1));
      const noise = Array.from({ length: SLOTS }, () => Math.random() * 2 - 1);
      for (const [what, reads] of [
        ["zeros", new Array(SLOTS).fill(0)],
        ["an unlisted codeword", stranger],
        ["noise", noise],
      ] as const) {
        const r = await trace(auditor.token, { reads, epsilon: 1e-6 });
        expect(r.status, what).toBe(200);
        expect(r.body.verdict, what).toBe("no-accusation");
        expect(r.body.accused, what).toEqual([]);
        expect(r.body.holders, what).toBe(await holderCount());
      }
      const zeros = await trace(auditor.token, { reads: new Array(SLOTS).fill(0) });
      expect(zeros.body).toMatchObject({ readable: 0, erased: SLOTS, accused: [] });
    });

    it("erases reads weaker than `erase`, and accuses only when the bound is within epsilon / holders", async () => {
      const weak = readsOf(await bitsOf("a")).map((x) => x * 0.3);
      expect((await trace(owner.token, { reads: weak })).body).toMatchObject({
        readable: 0,
        verdict: "no-accusation",
      });
      expect((await trace(owner.token, { reads: weak, erase: 0.2 })).body).toMatchObject({
        readable: SLOTS,
        verdict: "accused",
      });
      // Some of A's marks read: A's bound is what it is; ε just above bound × holders accuses,
      // just below does not (ε stays within the 10⁻² the API allows).
      const biases = JSON.parse(
        (
          await h.server.ctx.db.kysely
            .selectFrom("model_traces")
            .select("biases")
            .where("model_id", "=", MODEL.id)
            .executeTakeFirstOrThrow()
        ).biases,
      ) as number[];
      const holders = await holderCount();
      const bitsA = await bitsOf("a");
      let half: number[] = [];
      let bound = 1;
      for (let k = 8; k <= SLOTS; k += 4) {
        half = readsOf(bitsA).map((x, i) => (i < k ? x : 0));
        const pirate = pirateBits(half, 0.5);
        bound = innocentBound(score(codewordBits(bitsA), pirate, biases), pirate, biases);
        if (bound * holders * 1.5 <= 1e-2) break;
      }
      expect(bound * holders * 1.5).toBeLessThanOrEqual(1e-2);
      const above = await trace(owner.token, { reads: half, epsilon: bound * holders * 1.5 });
      expect(above.body.verdict).toBe("accused");
      expect(above.body.accused[0].bound).toBeCloseTo(bound, 12);
      const below = await trace(owner.token, { reads: half, epsilon: bound * holders * 0.5 });
      expect(below.body.verdict).toBe("no-accusation");
      expect(below.body.epsilon).toBe(bound * holders * 0.5);
    });

    it("lets the owning publisher and auditors trace; refuses other publishers, clients and admins", async () => {
      const reads = new Array(SLOTS).fill(0);
      expect((await trace(owner.token, { reads })).status).toBe(200);
      expect((await trace(auditor.token, { reads })).status).toBe(200);
      const other = await trace(rival.token, { reads });
      expect(other.status).toBe(403);
      expect(other.body.error.code).toBe("ERR_MODEL_NOT_OWNED");
      const denied = (await audit("trace.run")).filter((e) => e.actor === rival.id);
      expect(denied.map((e) => e.outcome)).toEqual(["denied"]);
      for (const who of [clientA.token, h.admin]) {
        const r = await trace(who, { reads });
        expect(r.status).toBe(403);
        expect(r.body.error.code).toBe("ERR_FORBIDDEN");
      }
    });

    it("refuses reads that are not one number within ±1e6 per slot, unknown and untraceable models", async () => {
      for (const reads of [
        new Array(SLOTS - 1).fill(0),
        new Array(SLOTS + 1).fill(0),
        [...new Array(SLOTS - 1).fill(0), 2e6],
      ]) {
        const r = await trace(auditor.token, { reads });
        expect(r.status, String(reads.length)).toBe(400);
        expect(r.body.error.code).toBe("ERR_TRACE_READS_INVALID");
      }
      for (const body of [
        { reads: new Array(513).fill(0) },
        { reads: ["1"] },
        { reads: new Array(SLOTS).fill(0), epsilon: 0 },
        { reads: new Array(SLOTS).fill(0), epsilon: 0.02 },
        { reads: new Array(SLOTS).fill(0), erase: 0.1 },
        { reads: new Array(SLOTS).fill(0), erase: 1 },
        { reads: new Array(SLOTS).fill(0), leakSha256: "not-hex" },
        { reads: new Array(SLOTS).fill(0), extra: 1 },
      ]) {
        const r = await trace(auditor.token, body);
        expect(r.status, JSON.stringify(body).slice(0, 60)).toBe(400);
        expect(r.body.error.code).toBe("ERR_REQUEST_INVALID");
      }
      // A small body limit: a 40 KiB body is refused before it is parsed.
      const big = await trace(auditor.token, { reads: [0], pad: "x".repeat(40 * 1024) });
      expect(big.status).toBe(413);
      const untraceable = await trace(owner.token, { reads: [0] }, { id: "plain", version: 1 });
      expect(untraceable.status).toBe(409);
      expect(untraceable.body.error.code).toBe("ERR_MODEL_NOT_TRACEABLE");
      const unknown = await trace(auditor.token, { reads: [0] }, { id: "traced", version: 9 });
      expect(unknown.status).toBe(404);
      expect(unknown.body.error.code).toBe("ERR_MODEL_NOT_FOUND");
      // Another publisher learns nothing about which versions exist: missing or not, it is not theirs.
      for (const version of [1, 9]) {
        const probe = await trace(rival.token, { reads: [0] }, { id: "traced", version });
        expect(probe.status, String(version)).toBe(403);
        expect(probe.body.error.code).toBe("ERR_MODEL_NOT_OWNED");
      }
    });

    it("still traces a retired version, whose number cannot be registered traceable again", async () => {
      const pkg = await seal(h, traceableManifest("retiring", 1, 16), keys.privateJwk);
      expect((await register(h, owner.token, pkg, pkg.traceKey)).status).toBe(201);
      const retired = await h.call("POST", "/v1/admin/models/retiring/versions/1/retire", h.admin, {
        reason: "test",
      });
      expect(retired.status).toBe(200);
      const r = await trace(owner.token, { reads: new Array(16).fill(0) }, { id: "retiring", version: 1 });
      expect(r.status).toBe(200);
      const again = await seal(h, traceableManifest("retiring", 1, 16), keys.privateJwk);
      const refused = await register(h, owner.token, again, again.traceKey);
      expect(refused.status).toBe(409);
      expect(refused.body.error.code).toBe("ERR_CONFLICT");
      expect(refused.body.error.message).toContain("trace records are kept");
      // Nor untraceable: the kept codewords and secret would meet a package they do not fit.
      const plainAgain = await seal(h, traceableManifest("retiring", 1), keys.privateJwk);
      const refusedPlain = await register(h, owner.token, plainAgain);
      expect(refusedPlain.status).toBe(409);
      expect(refusedPlain.body.error.code).toBe("ERR_CONFLICT");
    });
  });
});
