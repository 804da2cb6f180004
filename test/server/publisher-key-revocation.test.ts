import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { EcJwk } from "../../src/core/jwk.js";
import { generateKeyPairJwk } from "../../src/pack/keygen.js";
import { packModel } from "../../src/pack/pack-model.js";
import { DIALECTS, freshPostgres } from "./databases.js";
import { DIGITS, grant, type Harness, registerDigits, startHarness, TestDevice } from "./harness.js";

type Principal = { id: string; token: string };

describe.each(DIALECTS)("publisher-key revocation (D6, %s)", (dialect) => {
  let h: Harness;
  let alice: Principal;
  let bob: Principal;
  let licensor: Principal;
  let auditor: Principal;

  beforeAll(async () => {
    h = await startHarness(dialect === "postgres" ? { database: await freshPostgres() } : {});
    alice = await h.principal("alice", ["publisher"]);
    bob = await h.principal("bob", ["publisher"]);
    licensor = await h.principal("lic", ["licensor"]);
    auditor = await h.principal("aud", ["auditor"]);
  });

  const revoke = (kid: string, token: string, admin = false) =>
    h.call("POST", `/v1/${admin ? "admin/" : ""}publisher-keys/${kid}/revoke`, token, {
      reason: "key leaked",
    });
  const revocations = async () =>
    (
      (await h.call("GET", "/v1/audit?limit=1000", auditor.token)).body.entries as {
        action: string;
        subject: string;
        actor: string;
      }[]
    ).filter((e) => e.action === "publisher-key.revoke");

  it("the owning publisher or an admin revokes a key (audited); nobody else can", async () => {
    const a = await registerDigits(h, alice, 1, { id: "owned" });
    const b = await registerDigits(h, bob, 1, { id: "bobs" });
    const kidA = a.publisher.publicJwk.kid as string;
    const kidB = b.publisher.publicJwk.kid as string;
    // Another publisher's key answers as a missing one; other roles are refused outright.
    expect((await revoke(kidA, bob.token)).body.error.code).toBe("ERR_NOT_FOUND");
    expect((await revoke(kidA, licensor.token)).body.error.code).toBe("ERR_FORBIDDEN");
    expect((await revoke(kidA, licensor.token, true)).body.error.code).toBe("ERR_FORBIDDEN");
    expect(await revocations()).toEqual([]);
    const own = await revoke(kidA, alice.token);
    expect(own.status).toBe(200);
    const byAdmin = await revoke(kidB, h.admin, true);
    expect(byAdmin.status).toBe(200);
    // Revoking again keeps the first record.
    h.clock.advance(5);
    expect((await revoke(kidA, alice.token)).body.revokedAt).toBe(own.body.revokedAt);
    expect((await revocations()).map((e) => [e.subject, e.actor])).toEqual([
      [kidA, alice.id],
      [kidB, expect.not.stringMatching(bob.id)],
    ]);
    // A revoked key cannot be trusted again by adding it back.
    const again = await h.call("POST", "/v1/admin/publisher-keys", h.admin, {
      jwk: a.publisher.publicJwk,
      principalId: alice.id,
    });
    expect(again.body.error.code).toBe("ERR_PUBLISHER_KEY_REVOKED");
  });

  it("nothing a revoked key signed is registered or licensed, and a new key takes over", async () => {
    const old = await registerDigits(h, alice, 1, { id: "rotating" });
    const client = await h.principal(`c${Math.random()}`, ["client"]);
    await grant(h, licensor.token, client.id, { modelId: "rotating" });
    const device = await TestDevice.create();
    const v1 = { model: { id: "rotating", version: 1 }, manifestDigest: old.digest };
    expect((await device.license(h, client.token, v1)).status).toBe(200);

    expect((await revoke(old.publisher.publicJwk.kid as string, alice.token)).status).toBe(200);
    // The running device's next renewal is refused with a code the worker treats as final.
    const renewal = await device.license(h, client.token, v1);
    expect(renewal.status).toBe(403);
    expect(renewal.body.error).toMatchObject({
      code: "ERR_PUBLISHER_KEY_REVOKED",
      data: { kid: old.publisher.publicJwk.kid },
    });
    // A thief holding the key signs v9 (a fast-forward): not registrable.
    const registrationKey = (await h.call("GET", "/.well-known/jwks.json")).body.keys.find(
      (k: { use: string }) => k.use === "enc",
    ) as EcJwk;
    const out = join(h.dir, `stolen-${Math.random()}`);
    await packModel({
      modelPath: DIGITS,
      id: "rotating",
      version: 9,
      signingKey: old.publisher.privateJwk,
      recipient: registrationKey,
      outDir: out,
    });
    const stolen = await h.call("POST", "/v1/models", alice.token, {
      manifest: await readFile(join(out, "manifest.jws"), "utf8"),
      contentKey: await readFile(join(out, "content-key.jwe"), "utf8"),
    });
    expect(stolen.body.error.code).toBe("ERR_PUBLISHER_KEY_REVOKED");
    const versions = await h.server.ctx.db.kysely
      .selectFrom("models")
      .select("version")
      .where("id", "=", "rotating")
      .execute();
    expect(versions).toEqual([{ version: 1 }]);
    // The publisher's new key signs v2, which registers and licenses as usual.
    const fresh = await registerDigits(h, alice, 2, {
      id: "rotating",
      keys: await generateKeyPairJwk("sig"),
    });
    const v2 = { model: { id: "rotating", version: 2 }, manifestDigest: fresh.digest };
    expect((await device.license(h, client.token, v2)).status).toBe(200);
  });
});
