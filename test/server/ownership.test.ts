import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { sealContentKey } from "../../src/core/content-key-jwe.js";
import type { EcJwk } from "../../src/core/jwk.js";
import { generateKeyPairJwk } from "../../src/pack/keygen.js";
import { packModel } from "../../src/pack/pack-model.js";
import { DIALECTS, freshPostgres } from "./databases.js";
import { DIGITS, grant, type Harness, registerDigits, startHarness, TestDevice } from "./harness.js";

const payloadOf = (jws: string) =>
  JSON.parse(Buffer.from(jws.split(".")[1] as string, "base64url").toString()) as {
    model: { id: string; version: number };
    contentKeyId: string;
  };

describe.each(DIALECTS)("publisher key and model id ownership, retirement (%s)", (dialect) => {
  let h: Harness;
  let alice: { id: string; token: string };
  let bob: { id: string; token: string };
  let licensor: { id: string; token: string };
  let auditor: { id: string; token: string };
  let registrationKey: EcJwk;

  beforeAll(async () => {
    h = await startHarness(dialect === "postgres" ? { database: await freshPostgres() } : {});
    alice = await h.principal("alice", ["publisher"]);
    bob = await h.principal("bob", ["publisher"]);
    licensor = await h.principal("lic", ["licensor"]);
    auditor = await h.principal("aud", ["auditor"]);
    registrationKey = (await h.call("GET", "/.well-known/jwks.json")).body.keys.find(
      (k: { use: string }) => k.use === "enc",
    );
  });

  /** Bob's attack: Alice's public manifest, with a content key of Bob's choosing sealed to the server. */
  async function squat(manifest: string, as = bob.token) {
    const p = payloadOf(manifest);
    const contentKey = await sealContentKey(
      {
        modelId: p.model.id,
        modelVersion: p.model.version,
        contentKeyId: p.contentKeyId,
        key: crypto.getRandomValues(new Uint8Array(32)),
      },
      registrationKey,
    );
    return h.call("POST", "/v1/models", as, { manifest, contentKey });
  }
  const audit = async () =>
    (await h.call("GET", "/v1/audit?limit=1000", auditor.token)).body.entries as {
      action: string;
      subject: string;
      actor: string;
    }[];

  it("refuses another publisher's manifest (signed by a key that is not the registrant's) and leaves the version free", async () => {
    // Alice packs a new model and serves its manifest before registering it; Bob races her with
    // it and a content key of his own. Only the publisher-key check stands in his way: the id is new.
    const keys = await generateKeyPairJwk("sig");
    await h.call("POST", "/v1/admin/publisher-keys", h.admin, { jwk: keys.publicJwk, principalId: alice.id });
    const out = join(h.dir, `fresh-${Math.random()}`);
    await packModel({
      modelPath: DIGITS,
      id: "fresh",
      version: 1,
      signingKey: keys.privateJwk,
      recipient: registrationKey,
      outDir: out,
    });
    const manifest = await readFile(join(out, "manifest.jws"), "utf8");
    const r = await squat(manifest);
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe("ERR_PUBLISHER_KEY_NOT_OWNED");
    expect(r.body.error.data.kid).toBe(keys.publicJwk.kid);
    expect(
      await h.server.ctx.db.kysely.selectFrom("models").selectAll().where("id", "=", "fresh").execute(),
    ).toEqual([]);
    const contentKey = await readFile(join(out, "content-key.jwe"), "utf8");
    expect((await h.call("POST", "/v1/models", alice.token, { manifest, contentKey })).status).toBe(201);
  });

  it("a publisher key belongs to one principal: adding it for another is 409, re-adding for its owner is harmless", async () => {
    const keys = await generateKeyPairJwk("sig");
    const add = (principalId: string) =>
      h.call("POST", "/v1/admin/publisher-keys", h.admin, { jwk: keys.publicJwk, principalId });
    expect((await add(alice.id)).status).toBe(201);
    expect((await add(alice.id)).status).toBe(201);
    const stolen = await add(bob.id);
    expect(stolen.status).toBe(409);
    expect(stolen.body.error.code).toBe("ERR_CONFLICT");
    const notPublisher = await add(licensor.id);
    expect(notPublisher.status).toBe(404);
  });

  it("a model id belongs to its first registrant: another publisher cannot claim its next versions", async () => {
    await registerDigits(h, alice, 1, { id: "owned" });
    const bobsKeys = await generateKeyPairJwk("sig");
    await expect(registerDigits(h, bob, 2, { id: "owned", keys: bobsKeys })).rejects.toThrow(
      /ERR_MODEL_NOT_OWNED/,
    );
    await expect(registerDigits(h, bob, 99, { id: "owned", keys: bobsKeys })).rejects.toThrow(
      /ERR_MODEL_NOT_OWNED/,
    );
    // Alice continues her line.
    await expect(registerDigits(h, alice, 2, { id: "owned" })).resolves.toBeTruthy();
  });

  it("an admin can assign a model id to another publisher (audited); only admins can", async () => {
    await registerDigits(h, alice, 1, { id: "handover" });
    expect(
      (await h.call("PUT", "/v1/admin/models/handover/owner", alice.token, { principalId: alice.id })).body
        .error.code,
    ).toBe("ERR_FORBIDDEN");
    const r = await h.call("PUT", "/v1/admin/models/handover/owner", h.admin, { principalId: bob.id });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ modelId: "handover", owner: bob.id, previous: alice.id });
    expect((await audit()).some((e) => e.action === "model.assign" && e.subject === "handover")).toBe(true);
    await expect(registerDigits(h, bob, 2, { id: "handover" })).resolves.toBeTruthy();
    await expect(registerDigits(h, alice, 3, { id: "handover" })).rejects.toThrow(/ERR_MODEL_NOT_OWNED/);
  });

  it("an admin retires a version (audited): licenses are refused, and its owner can register the version again", async () => {
    const first = await registerDigits(h, alice, 1, { id: "retiring" });
    const client = await h.principal(`c${Math.random()}`, ["client"]);
    await grant(h, licensor.token, client.id, { modelId: "retiring" });
    const device = await TestDevice.create();
    const model = { id: "retiring", version: 1 };
    expect((await device.license(h, client.token, { model, manifestDigest: first.digest })).status).toBe(200);
    const retire = (token: string) =>
      h.call("POST", "/v1/admin/models/retiring/versions/1/retire", token, { reason: "squatted" });
    expect((await retire(alice.token)).body.error.code).toBe("ERR_FORBIDDEN");
    expect((await retire(h.admin)).status).toBe(200);
    expect((await retire(h.admin)).body.error.code).toBe("ERR_MODEL_NOT_FOUND");
    const refused = await device.license(h, client.token, { model, manifestDigest: first.digest });
    expect(refused.status).toBe(410);
    expect(refused.body.error.code).toBe("ERR_MODEL_RETIRED");
    // Only that version is retired: another version, or another model, was never there at all.
    for (const other of [
      { id: "retiring", version: 2 },
      { id: "never-registered", version: 1 },
    ]) {
      const r = await device.license(h, client.token, { model: other, manifestDigest: first.digest });
      expect(r.body.error.code, JSON.stringify(other)).toBe("ERR_MODEL_NOT_FOUND");
    }
    const entries = await audit();
    expect(
      entries.some((e) => e.action === "model.retire" && e.subject === "retiring@1" && e.actor !== alice.id),
    ).toBe(true);
    const kept = await h.server.ctx.db.kysely
      .selectFrom("model_retirements")
      .selectAll()
      .where("model_id", "=", "retiring")
      .execute();
    expect(kept).toMatchObject([{ version: 1, manifest_digest: first.digest, reason: "squatted" }]);
    const again = await registerDigits(h, alice, 1, { id: "retiring" });
    const renewed = await device.license(h, client.token, { model, manifestDigest: again.digest });
    expect(renewed.status, JSON.stringify(renewed.body)).toBe(200);
  });

  it("a squatted version can be retired and registered by its rightful owner", async () => {
    // Before ownership existed, Bob's squat would have succeeded; simulate the aftermath with an
    // admin-assigned id, then show the way out.
    const keys = await generateKeyPairJwk("sig");
    await h.call("POST", "/v1/admin/publisher-keys", h.admin, { jwk: keys.publicJwk, principalId: bob.id });
    await registerDigits(h, bob, 1, { id: "taken", keys });
    await h.call("POST", "/v1/admin/models/taken/versions/1/retire", h.admin, {
      reason: "registered by the wrong publisher",
    });
    await h.call("PUT", "/v1/admin/models/taken/owner", h.admin, { principalId: alice.id });
    await expect(registerDigits(h, alice, 1, { id: "taken" })).resolves.toBeTruthy();
  });
});
