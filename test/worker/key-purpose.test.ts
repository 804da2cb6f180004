import { describe, expect, it } from "vitest";
import { sealContentKey } from "../../src/core/content-key-jwe.js";
import { checkEcJwk } from "../../src/core/jwk.js";
import { importContentKey } from "../../src/core/shard-cipher.js";
import { generateKeyPairJwk } from "../../src/pack/keygen.js";
import { deviceKeys } from "../../worker/device-keys.js";

/**
 * The DOMException name a Web Crypto call failed with (toMatchObject cannot see its getters).
 * Node names one of them InvalidAccessException; browsers say InvalidAccessError.
 */
const failure = (p: Promise<unknown>) =>
  p.then(
    () => "succeeded",
    (e: DOMException) => e.name,
  );

/** One key, one purpose (RFC 8725bis, ASVS 11.1.2): every key is made for one use and refused for any other. */
describe("key purpose (C10)", () => {
  it("a signing key is refused for sealing and a sealing key for signing; device and content keys do only their one job", async () => {
    const sig = await generateKeyPairJwk("sig");
    const enc = await generateKeyPairJwk("enc");
    expect(() => checkEcJwk(enc.privateJwk, true, "signing key", "sig")).toThrow(
      expect.objectContaining({ code: "ERR_KEY_INVALID" }),
    );
    expect(() => checkEcJwk(sig.publicJwk, false, "recipient key", "enc")).toThrow(
      expect.objectContaining({ code: "ERR_KEY_INVALID" }),
    );
    const envelope = { modelId: "m", modelVersion: 1, contentKeyId: "A".repeat(22), key: new Uint8Array(32) };
    await expect(sealContentKey(envelope, sig.publicJwk)).rejects.toMatchObject({ code: "ERR_KEY_INVALID" });
    await expect(sealContentKey(envelope, enc.publicJwk)).resolves.toMatch(/^ey/);

    // The device's keys, as the worker makes them: the ECDSA key signs and derives nothing, the
    // ECDH key derives and signs nothing (Web Crypto enforces the usages they were made with).
    const device = await deviceKeys("https://x", undefined, new Map());
    const data = new Uint8Array(8);
    await expect(
      crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, device.signPrivate, data),
    ).resolves.toBeTruthy();
    expect(
      await failure(crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, device.agreePrivate, data)),
    ).toMatch(/^InvalidAccess/);
    const peer = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveKey"]);
    const derive = (key: CryptoKey) =>
      crypto.subtle.deriveKey({ name: "ECDH", public: peer.publicKey }, key, { name: "HKDF" }, false, [
        "deriveKey",
      ]);
    await expect(derive(device.agreePrivate)).resolves.toBeTruthy();
    expect(await failure(derive(device.signPrivate))).toMatch(/^InvalidAccess/);
    // A content key imported to decrypt shards cannot encrypt, wrap or be exported.
    const content = await importContentKey(new Uint8Array(32));
    expect(content.usages).toEqual(["decrypt"]);
    expect(
      await failure(crypto.subtle.encrypt({ name: "AES-GCM", iv: new Uint8Array(12) }, content, data)),
    ).toMatch(/^InvalidAccess/);
    expect(await failure(crypto.subtle.exportKey("raw", content))).toMatch(/^InvalidAccess/);
  });
});
