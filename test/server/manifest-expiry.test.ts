import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { EcJwk } from "../../src/core/jwk.js";
import { generateKeyPairJwk } from "../../src/pack/keygen.js";
import { packModel } from "../../src/pack/pack-model.js";
import { DIALECTS, freshPostgres } from "./databases.js";
import { DIGITS, grant, type Harness, startHarness, TestDevice } from "./harness.js";

type Principal = { id: string; token: string };

describe.each(DIALECTS)("a manifest's signed validity (D4 freeze, %s)", (dialect) => {
  let h: Harness;
  let publisher: Principal;
  let licensor: Principal;
  let keys: { privateJwk: EcJwk; publicJwk: EcJwk };

  beforeAll(async () => {
    h = await startHarness(dialect === "postgres" ? { database: await freshPostgres() } : {});
    publisher = await h.principal("pub", ["publisher"]);
    licensor = await h.principal("lic", ["licensor"]);
    keys = await generateKeyPairJwk("sig");
    await h.call("POST", "/v1/admin/publisher-keys", h.admin, {
      jwk: keys.publicJwk,
      principalId: publisher.id,
    });
  });

  /** Packs digits as `id` v1, valid until `expires`, and offers it for registration. */
  async function register(id: string, expires: number) {
    const registrationKey = (await h.call("GET", "/.well-known/jwks.json")).body.keys.find(
      (k: { use: string }) => k.use === "enc",
    ) as EcJwk;
    const out = join(h.dir, `${id}-${Math.random()}`);
    const { manifest } = await packModel({
      modelPath: DIGITS,
      id,
      version: 1,
      signingKey: keys.privateJwk,
      recipient: registrationKey,
      outDir: out,
      expires,
    });
    expect(manifest.expires).toBe(expires);
    return h.call("POST", "/v1/models", publisher.token, {
      manifest: await readFile(join(out, "manifest.jws"), "utf8"),
      contentKey: await readFile(join(out, "content-key.jwe"), "utf8"),
    });
  }

  it("no license outlasts the manifest, none is issued once it lapsed, and a lapsed manifest is not registered", async () => {
    const expires = h.clock.now() + 900;
    const registered = await register("freezing", expires);
    expect(registered.status).toBe(201);
    const client = await h.principal(`c${Math.random()}`, ["client"]);
    // A 10-minute license with an hour offline: the offline window is cut at the manifest's end.
    await grant(h, licensor.token, client.id, {
      modelId: "freezing",
      licenseTtlSeconds: 600,
      offlineSeconds: 3600,
    });
    const device = await TestDevice.create();
    const request = { model: { id: "freezing", version: 1 }, manifestDigest: registered.body.manifestDigest };
    const ok = await device.license(h, client.token, request);
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    const claims = JSON.parse(Buffer.from(ok.body.license.split(".")[1], "base64url").toString());
    expect(claims.exp).toBe(h.clock.now() + 600);
    expect(claims.offline_until).toBe(expires);
    // A mirror still serving it after its end: the server refuses, with the code the worker obeys.
    h.clock.advance(900);
    const lapsed = await device.license(h, client.token, request);
    expect(lapsed.status).toBe(410);
    expect(lapsed.body.error).toMatchObject({ code: "ERR_MANIFEST_EXPIRED", data: { expires } });
    // Signed to end in a minute, offered two minutes later: refused, nothing stored.
    const late = h.clock.now() + 60;
    h.clock.advance(120);
    expect((await register("late", late)).body.error.code).toBe("ERR_MANIFEST_EXPIRED");
    expect(
      await h.server.ctx.db.kysely.selectFrom("models").select("id").where("id", "=", "late").execute(),
    ).toEqual([]);
  });
});
