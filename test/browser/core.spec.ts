import { expect, test } from "@playwright/test";

const FIX = "/test/browser/fixtures-out/core";

test("the core verifies, checks and decrypts a packed model inside Chromium's Web Crypto", async ({
  page,
}) => {
  await page.goto("/test/browser/pages/core.html");
  await expect(page).toHaveTitle("core ready");
  const result = await page.evaluate(async (fix) => {
    const core = (globalThis as never as { mvCore: typeof import("../../src/core/index.js") }).mvCore;
    const pinned = await (await fetch(`${fix}/publisher.public.jwk.json`)).json();
    const raw = core.fromBase64Url((await (await fetch(`${fix}/content-key.json`)).json()).k);
    const { manifest } = await core.verifyManifest(await (await fetch(`${fix}/digits/manifest.jws`)).text(), [
      pinned,
    ]);
    const key = await core.importContentKey(raw);
    const file = manifest.files[0] as (typeof manifest.files)[number];
    let bytes = 0;
    for (const shard of file.shards) {
      const ciphertext = new Uint8Array(
        await (await fetch(`${fix}/digits/${core.shardPath(shard)}`)).arrayBuffer(),
      );
      await core.checkShardBytes(shard, ciphertext, file.location);
      bytes += (
        await core.openShard(
          key,
          core.fromBase64Url(shard.iv),
          ciphertext,
          core.shardContext(manifest, file, shard.index),
        )
      ).length;
    }
    const tampered = await core
      .verifyManifest(`${(await (await fetch(`${fix}/digits/manifest.jws`)).text()).slice(0, -4)}AAAA`, [
        pinned,
      ])
      .catch((e) => e.code);
    return {
      bytes,
      size: manifest.size,
      shards: file.shards.length,
      extractable: key.extractable,
      tampered,
      secure: isSecureContext,
    };
  }, FIX);
  expect(result).toEqual({
    bytes: 407506,
    size: 407506,
    shards: 7,
    extractable: false,
    tampered: "ERR_MANIFEST_SIGNATURE_INVALID",
    secure: true,
  });
});
