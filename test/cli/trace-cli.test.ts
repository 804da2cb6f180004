import { cp, readFile, rm, stat } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { tempDir } from "../fixtures.js";
import { runCli } from "./run-cli.js";

const DIGITS = fileURLToPath(new URL("../../models/digits/digits.onnx", import.meta.url));
let dir: string;
let keys: string;

beforeAll(async () => {
  dir = await tempDir();
  keys = join(dir, "keys");
  expect((await runCli(["keygen", "--out", keys])).code).toBe(0);
  expect((await runCli(["keygen", "--out", keys, "--name", "server", "--use", "enc"])).code).toBe(0);
});

const packArgs = (out: string, extra: string[]) => [
  "pack",
  DIGITS,
  "--id",
  "digits",
  "--version",
  "3",
  "--sign-key",
  join(keys, "publisher.private.jwk.json"),
  "--recipient",
  join(keys, "server.public.jwk.json"),
  "--out",
  out,
  ...extra,
];

function payload(jws: string) {
  return JSON.parse(Buffer.from(jws.split(".")[1] as string, "base64url").toString());
}

describe("modelvault pack/verify/register with --trace-slots", () => {
  const out = () => join(dir, "traced");
  const traceKey = () => join(dir, "digits-3.trace.json");

  it("pack --trace-* flags round-trip into the manifest and the printed report", async () => {
    const r = await runCli(
      packArgs(out(), [
        "--trace-slots",
        "128",
        "--trace-key-out",
        traceKey(),
        "--trace-strength",
        "0.01",
        "--trace-coverage",
        "0.4",
        "--trace-tolerance",
        "0.5",
      ]),
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /traceable: 128 slots × 317 weights \(39\.9% of 101632 eligible weights\), strength 0\.01σ/,
    );
    expect(r.stdout).toMatch(
      /quality: max \|Δ\| [0-9.e-]+, mean \|Δ\| [0-9.e-]+ over 32 random samples × 4 codewords .*tolerance 0\.5/,
    );
    expect(r.stderr).toContain("content-key.jwe and trace-key.jwe are for `modelvault register`");
    expect(r.stderr).toContain(`the trace key ${traceKey()} (mode 0600)`);
    expect((await stat(traceKey())).mode & 0o777).toBe(0o600);
    const m = payload(await readFile(join(out(), "manifest.jws"), "utf8"));
    expect(m.trace.slots).toHaveLength(128);
    expect(m.trace.slots[0].size).toBe(317 * 4);
  });

  it("verify checks and decrypts the variants; --extract says it filled variant 0", async () => {
    const common = ["verify", out(), "--publisher-key", join(keys, "publisher.public.jwk.json")];
    const plain = await runCli(common);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toMatch(/1 shard digests, 256 slot variant digests \(pass --recipient-key/);
    const withKey = await runCli([...common, "--trace-key", traceKey()]);
    expect(withKey.stdout).toMatch(/256 slot variant digests.*256 slot variants decrypted/);
    const to = join(dir, "extracted");
    const r = await runCli([
      ...common,
      "--recipient-key",
      join(keys, "server.private.jwk.json"),
      "--extract",
      to,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/1 shards decrypted, 256 slot variants decrypted/);
    expect(r.stderr).toMatch(/variant 0 in every one of the 128 trace slots/);
    expect((await stat(join(to, "digits.onnx"))).size).toBe((await stat(DIGITS)).size);
    const wrong = await runCli([...common, "--trace-key", join(keys, "publisher.private.jwk.json")]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain("ERR_KEY_INVALID");
  });

  it("register sends trace-key.jwe as traceKey beside the content key", async () => {
    const bodies: Record<string, unknown>[] = [];
    const server = createServer((req, res) => {
      let text = "";
      req.on("data", (c) => {
        text += c;
      });
      req.on("end", () => {
        bodies.push(JSON.parse(text));
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({ id: "digits", version: 3, manifestDigest: "d" }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const lines: string[] = [];
      const io = {
        out: (l: string) => lines.push(l),
        err: (l: string) => lines.push(l),
        env: {
          MODELVAULT_SERVER: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
          MODELVAULT_API_KEY: "k",
        },
      };
      expect(await main(["register", out()], io)).toBe(0);
      expect(bodies[0]).toEqual({
        manifest: await readFile(join(out(), "manifest.jws"), "utf8"),
        contentKey: await readFile(join(out(), "content-key.jwe"), "utf8"),
        traceKey: await readFile(join(out(), "trace-key.jwe"), "utf8"),
      });
      // A traceable package without its trace key is refused before anything is sent.
      const copy = join(dir, "no-trace-key");
      await cp(out(), copy, { recursive: true });
      await rm(join(copy, "trace-key.jwe"));
      expect(await main(["register", copy], io)).toBe(1);
      expect(lines.at(-1)).toMatch(/^error ERR_TRACE_KEY_INVALID: .*trace-key\.jwe is missing/);
      expect(bodies).toHaveLength(1);
    } finally {
      server.close();
    }
  });

  it("refuses bad trace flags with ERR_PACK_TRACE_INVALID and leaves nothing behind", async () => {
    for (const extra of [
      ["--trace-slots", "abc", "--trace-key-out", join(dir, "a.json")],
      ["--trace-slots", "600", "--trace-key-out", join(dir, "b.json")],
      ["--trace-slots", "64"],
      ["--trace-strength", "0.1"],
      ["--trace-slots", "64", "--trace-key-out", join(dir, "c.json"), "--trace-coverage", "1.5"],
    ]) {
      const target = join(dir, `bad-${extra.join("")}`.replace(/[^A-Za-z0-9-]/g, ""));
      const r = await runCli(packArgs(target, extra));
      expect(r.code, extra.join(" ")).toBe(1);
      expect(r.stderr).toContain("ERR_PACK_TRACE_INVALID");
      await expect(stat(target)).rejects.toThrow();
    }
  });
});
