import { readdir, readFile, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createFileAtomic, removeStaleTemps } from "../../src/server/keys/key-file.js";
import { loadServerKeys, publicJwks, rotateSigningKeys } from "../../src/server/keys/server-keys.js";
import { tempDir } from "../fixtures.js";

describe("server key files", () => {
  it("name the file in every load error: empty (an old crash), not JSON, not a key, a short KEK", async () => {
    const cases: [string, string, RegExp][] = [
      [
        "license-signing.current.jwk.json",
        "",
        /license signing key file .*license-signing\.current\.jwk\.json is empty/,
      ],
      [
        "license-signing.next.jwk.json",
        "{",
        /next license signing key in .*license-signing\.next\.jwk\.json is not JSON/,
      ],
      [
        "registration.jwk.json",
        '{"kty":"RSA"}',
        /key-registration key file .*registration\.jwk\.json is not a P-256 EC JWK/,
      ],
      ["kek.key", "c2hvcnQ\n", /KEK in .*kek\.key is not 32 base64url bytes/],
      [
        "license-signing.retired.json",
        "{}",
        /retired signing keys file .*license-signing\.retired\.json is not a JSON array/,
      ],
    ];
    for (const [file, contents, message] of cases) {
      const dir = await tempDir("mv-keys-");
      await loadServerKeys({ dir });
      await writeFile(join(dir, file), contents);
      const error = await loadServerKeys({ dir }).catch((e: unknown) => e);
      expect(error, file).toMatchObject({ code: "ERR_KEY_INVALID", message: expect.stringMatching(message) });
    }
    await expect(
      loadServerKeys({ dir: await tempDir("mv-keys-"), env: { MODELVAULT_LICENSE_KEY: "{" } }),
    ).rejects.toMatchObject({ message: expect.stringContaining("MODELVAULT_LICENSE_KEY is not JSON") });
  });

  it("are created exactly once when several processes start on one directory", async () => {
    const dir = await tempDir("mv-keys-");
    const all = await Promise.all(Array.from({ length: 8 }, () => loadServerKeys({ dir })));
    expect(new Set(all.map((k) => k.current.kid)).size).toBe(1);
    expect(new Set(all.map((k) => k.registration.kid)).size).toBe(1);
    expect(new Set(all.map((k) => k.kek.id)).size).toBe(1);
    expect((await readdir(dir)).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    const winners = await Promise.all(
      Array.from({ length: 8 }, (_, i) => createFileAtomic(join(dir, "x"), `${i}`)),
    );
    expect(winners.filter(Boolean)).toHaveLength(1);
    expect(await readFile(join(dir, "x"), "utf8")).toBe(String(winners.indexOf(true)));
  });

  it("remove temporary files a crash left behind, not a write in progress", async () => {
    const dir = await tempDir("mv-keys-");
    const old = join(dir, ".kek.key.0123456789abcdef.tmp");
    const fresh = join(dir, ".kek.key.fedcba9876543210.tmp");
    await writeFile(old, "");
    await writeFile(fresh, "");
    await utimes(old, new Date(Date.now() - 120_000), new Date(Date.now() - 120_000));
    await removeStaleTemps(dir);
    expect(await readdir(dir)).toEqual([".kek.key.fedcba9876543210.tmp"]);
  });

  it("finish a rotation a crash cut short, publishing each key once", async () => {
    const dir = await tempDir("mv-keys-");
    const keys = await loadServerKeys({ dir });
    const current = await readFile(join(dir, "license-signing.current.jwk.json"), "utf8");
    const next = await readFile(join(dir, "license-signing.next.jwk.json"), "utf8");
    // Cut after step 1 (current retired, still current): published once.
    await writeFile(join(dir, "license-signing.retired.json"), `[${current}]`);
    const afterStep1 = await loadServerKeys({ dir });
    expect(afterStep1.current.kid).toBe(keys.current.kid);
    expect(publicJwks(afterStep1).keys.filter((k) => k.kid === keys.current.kid)).toHaveLength(1);
    // Cut after step 2 (next promoted, no new next yet): a fresh next key is made.
    await writeFile(join(dir, "license-signing.current.jwk.json"), next);
    const afterStep2 = await loadServerKeys({ dir });
    expect(afterStep2.current.kid).toBe(keys.next.kid);
    expect(afterStep2.next.kid).not.toBe(keys.next.kid);
    expect(afterStep2.retired.map((k) => k.kid)).toEqual([keys.current.kid]);
    // A whole rotation from there works as usual.
    const rotated = await rotateSigningKeys({ dir }, afterStep2);
    expect(rotated.current.kid).toBe(afterStep2.next.kid);
    expect((await loadServerKeys({ dir })).current.kid).toBe(rotated.current.kid);
  });
});
