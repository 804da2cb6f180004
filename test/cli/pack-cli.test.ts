import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "../fixtures.js";
import { runCli } from "./run-cli.js";

const DIGITS = fileURLToPath(new URL("../../models/digits/digits.onnx", import.meta.url));
let dir: string;
let keys: string;
let sign: string;
let recipient: string;

beforeAll(async () => {
  dir = await tempDir();
  keys = join(dir, "keys");
  expect((await runCli(["keygen", "--out", keys])).code).toBe(0);
  expect((await runCli(["keygen", "--out", keys, "--name", "server", "--use", "enc"])).code).toBe(0);
  sign = join(keys, "publisher.private.jwk.json");
  recipient = join(keys, "server.public.jwk.json");
});

const packArgs = (out: string, extra: string[] = []) => [
  "pack",
  DIGITS,
  "--id",
  "digits",
  "--version",
  "1",
  "--sign-key",
  sign,
  "--recipient",
  recipient,
  "--out",
  out,
  ...extra,
];

describe("modelvault CLI (in a child process)", () => {
  it("keygen writes private keys 0600 and public keys 0644, and refuses to overwrite", async () => {
    expect((await stat(sign)).mode & 0o777).toBe(0o600);
    expect((await stat(join(keys, "publisher.public.jwk.json"))).mode & 0o777).toBe(0o644);
    const again = await runCli(["keygen", "--out", keys]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("exists");
    const jwk = JSON.parse(await readFile(join(keys, "publisher.public.jwk.json"), "utf8"));
    expect(jwk.d).toBeUndefined();
  });

  it("packs and verifies the digits model; verify decrypts with the recipient key", async () => {
    const out = join(dir, "pkg");
    const packed = await runCli(packArgs(out));
    expect(packed.code, packed.stderr).toBe(0);
    expect(packed.stdout).toMatch(/packed digits v1: 407506 bytes/);
    expect((await readdir(out)).sort()).toEqual(["content-key.jwe", "manifest.jws", "shards"]);
    const verified = await runCli([
      "verify",
      out,
      "--publisher-key",
      join(keys, "publisher.public.jwk.json"),
      "--recipient-key",
      join(keys, "server.private.jwk.json"),
    ]);
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout).toMatch(/^ok digits v1: signature .* shards decrypted/);
  });

  it("verify --extract makes a missing folder (0700) and writes the plaintext model 0600, byte for byte", async () => {
    const out = join(dir, "pkg-extract");
    expect((await runCli(packArgs(out))).code).toBe(0);
    const to = join(dir, "not", "yet", "there");
    const common = ["verify", out, "--publisher-key", join(keys, "publisher.public.jwk.json")];
    const refused = await runCli([...common, "--extract", to]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("--extract needs --recipient-key");
    const r = await runCli([
      ...common,
      "--recipient-key",
      join(keys, "server.private.jwk.json"),
      "--extract",
      to,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect((await stat(to)).mode & 0o777).toBe(0o700);
    const model = join(to, "digits.onnx");
    expect((await stat(model)).mode & 0o777).toBe(0o600);
    expect(Buffer.compare(await readFile(model), await readFile(DIGITS))).toBe(0);
  });

  it("pack --top-k --decimals signs an output policy into the manifest; bad values leave nothing behind", async () => {
    const out = join(dir, "pkg-policy");
    const packed = await runCli(packArgs(out, ["--top-k", "3", "--decimals", "2"]));
    expect(packed.code, packed.stderr).toBe(0);
    expect(packed.stdout).toContain('output policy {"topK":3,"decimals":2}');
    const jws = await readFile(join(out, "manifest.jws"), "utf8");
    const manifest = JSON.parse(Buffer.from(jws.split(".")[1] as string, "base64url").toString());
    expect(manifest.outputPolicy).toEqual({ topK: 3, decimals: 2 });
    for (const bad of [
      ["--top-k", "0"],
      ["--decimals", "16"],
      ["--top-k", "-1"],
      ["--decimals", "1.5"],
    ]) {
      const target = join(dir, `pkg-bad-${bad.join("")}`);
      const r = await runCli(packArgs(target, bad));
      expect(r.code, bad.join(" ")).not.toBe(0);
      expect(r.stderr).toMatch(/ERR_(PACK_OUTPUT_POLICY_INVALID|CLI_USAGE)/);
      await expect(stat(target)).rejects.toThrow();
    }
  });

  it("pack --expires-in signs a validity into the manifest; one not in the future leaves nothing behind", async () => {
    const out = join(dir, "pkg-expires");
    const before = Math.floor(Date.now() / 1000);
    const packed = await runCli(packArgs(out, ["--expires-in", "3600"]));
    expect(packed.code, packed.stderr).toBe(0);
    const jws = await readFile(join(out, "manifest.jws"), "utf8");
    const manifest = JSON.parse(Buffer.from(jws.split(".")[1] as string, "base64url").toString());
    expect(manifest.expires).toBeGreaterThanOrEqual(before + 3600);
    expect(manifest.expires).toBeLessThan(before + 3600 + 60);
    const target = join(dir, "pkg-expired");
    const r = await runCli(packArgs(target, ["--expires-in", "0"]));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("ERR_PACK_EXPIRES_INVALID");
    await expect(stat(target)).rejects.toThrow();
  });

  it("verify exits 1 with the precise code on a tampered shard", async () => {
    const out = join(dir, "pkg-tampered");
    expect((await runCli(packArgs(out))).code).toBe(0);
    const shard = join(out, "shards", (await readdir(join(out, "shards")))[0] as string);
    const bytes = await readFile(shard);
    bytes[10] = (bytes[10] as number) ^ 1;
    await writeFile(shard, bytes);
    const r = await runCli(["verify", out, "--publisher-key", join(keys, "publisher.public.jwk.json")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error ERR_SHARD_DIGEST_MISMATCH: shard \d+ of digits.onnx/);
  });

  const badInputs: [string, () => string[], number, string][] = [
    [
      "a missing model",
      () => packArgs(join(dir, "o1")).map((a) => (a === DIGITS ? join(dir, "nope.onnx") : a)),
      1,
      "ERR_PACK_INPUT_NOT_FOUND",
    ],
    [
      "a non-ONNX input",
      () =>
        packArgs(join(dir, "o2")).map((a) =>
          a === DIGITS ? fileURLToPath(new URL("../../package.json", import.meta.url)) : a,
        ),
      1,
      "ERR_PACK_NOT_ONNX",
    ],
    [
      "an id with a path",
      () => packArgs(join(dir, "o3")).map((a) => (a === "digits" ? "../evil" : a)),
      1,
      "ERR_INVALID_ID",
    ],
    [
      "an id with a control character",
      () => packArgs(join(dir, "o4")).map((a) => (a === "digits" ? "a\u0007b" : a)),
      1,
      "ERR_INVALID_ID",
    ],
    [
      "a version with a path",
      () => packArgs(join(dir, "o5")).map((a, i, all) => (all[i - 1] === "--version" ? "1/../2" : a)),
      1,
      "ERR_INVALID_VERSION",
    ],
    [
      "a shard size below 64 KiB",
      () => packArgs(join(dir, "o6"), ["--shard-size", "65535"]),
      1,
      "ERR_PACK_SHARD_SIZE_OUT_OF_RANGE",
    ],
    [
      "a shard size above 256 MiB",
      () => packArgs(join(dir, "o7"), ["--shard-size", String(256 * 1024 * 1024 + 1)]),
      1,
      "ERR_PACK_SHARD_SIZE_OUT_OF_RANGE",
    ],
    [
      "a public-only signing key",
      () => packArgs(join(dir, "o8")).map((a) => (a === sign ? join(keys, "publisher.public.jwk.json") : a)),
      1,
      "ERR_KEY_NOT_PRIVATE",
    ],
    [
      "an encryption key used for signing",
      () => packArgs(join(dir, "o9")).map((a) => (a === sign ? join(keys, "server.private.jwk.json") : a)),
      1,
      "ERR_KEY_INVALID",
    ],
    [
      "an unreadable signing key",
      () => packArgs(join(dir, "o10")).map((a) => (a === sign ? join(dir, "missing.json") : a)),
      1,
      "ERR_KEY_INVALID",
    ],
    [
      "no recipient",
      () =>
        packArgs(join(dir, "o11")).filter((a, i, all) => a !== "--recipient" && all[i - 1] !== "--recipient"),
      1,
      "ERR_PACK_RECIPIENT_REQUIRED",
    ],
    ["an unknown option", () => packArgs(join(dir, "o12"), ["--shard", "1"]), 2, "ERR_CLI_USAGE"],
    ["a missing --out", () => packArgs(join(dir, "o13")).slice(0, -2), 2, "ERR_CLI_USAGE"],
  ];

  it.each(badInputs)("refuses %s with its code and leaves no output", async (_, args, exit, code) => {
    const a = args();
    const out = a[a.indexOf("--out") + 1] as string;
    const r = await runCli(a);
    expect(r.code).toBe(exit);
    expect(r.stderr).toContain(code);
    if (a.includes("--out")) await expect(stat(out)).rejects.toThrow();
    expect((await readdir(dir)).filter((f) => f.includes(".tmp-"))).toEqual([]);
  });

  it("refuses a non-empty output directory unless --force, keeping the old contents on refusal", async () => {
    const out = join(dir, "existing");
    expect((await runCli(packArgs(out))).code).toBe(0);
    const before = await readFile(join(out, "manifest.jws"), "utf8");
    const refused = await runCli(packArgs(out));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("ERR_PACK_OUTPUT_NOT_EMPTY");
    expect(await readFile(join(out, "manifest.jws"), "utf8")).toBe(before);
    const forced = await runCli(packArgs(out, ["--force"]));
    expect(forced.code).toBe(0);
    expect(await readFile(join(out, "manifest.jws"), "utf8")).not.toBe(before);
    expect((await readdir(join(out, "shards"))).length).toBe(1); // 4 MiB default shard: the old shards are gone
  });

  it("--insecure-key-out writes the key 0600 with a loud warning", async () => {
    const keyOut = join(dir, "dev-content-key.json");
    const args = packArgs(join(dir, "insecure")).filter(
      (a, i, all) => a !== "--recipient" && all[i - 1] !== "--recipient",
    );
    const r = await runCli([...args, "--insecure-key-out", keyOut]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/WARNING: the raw content key/);
    expect((await stat(keyOut)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(keyOut, "utf8")).k).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it("prints usage and exits 2 for an unknown command", async () => {
    const r = await runCli(["frobnicate"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("usage: modelvault");
  });
});
