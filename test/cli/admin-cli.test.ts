import { beforeAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { generateKeyPairJwk } from "../../src/pack/keygen.js";
import { type Harness, startHarness } from "../server/harness.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});

/** Runs the CLI in this process against the test server, as `token`. */
async function cli(args: string[], token: string) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    env: { MODELVAULT_SERVER: h.url, MODELVAULT_API_KEY: token },
  });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

describe("modelvault admin publisher-key revoke", () => {
  it("revokes with an admin key, or with --own by the key's publisher; never someone else's", async () => {
    const alice = await h.principal("alice", ["publisher"]);
    const bob = await h.principal("bob", ["publisher"]);
    const kids: string[] = [];
    for (const owner of [alice, alice]) {
      const { publicJwk } = await generateKeyPairJwk("sig");
      const r = await h.call("POST", "/v1/admin/publisher-keys", h.admin, {
        jwk: publicJwk,
        principalId: owner.id,
      });
      kids.push(r.body.kid);
    }
    const [first, second] = kids as [string, string];
    const byAdmin = await cli(["admin", "publisher-key", "revoke", first, "--reason", "leaked"], h.admin);
    expect(byAdmin.code, byAdmin.err).toBe(0);
    expect(byAdmin.out).toContain(`revoked publisher key ${first}`);
    const notHers = await cli(
      ["admin", "publisher-key", "revoke", second, "--reason", "x", "--own"],
      bob.token,
    );
    expect(notHers.code).toBe(1);
    expect(notHers.err).toContain("ERR_NOT_FOUND");
    const own = await cli(
      ["admin", "publisher-key", "revoke", second, "--reason", "rotated", "--own"],
      alice.token,
    );
    expect(own.code, own.err).toBe(0);
    const rows = await h.server.ctx.db.kysely
      .selectFrom("publisher_keys")
      .select(["kid", "revoked_by", "revoked_reason"])
      .execute();
    expect(rows.filter((r) => r.revoked_by !== null).map((r) => [r.kid, r.revoked_reason])).toEqual(
      expect.arrayContaining([
        [first, "leaked"],
        [second, "rotated"],
      ]),
    );
    expect((await cli(["admin", "publisher-key", "revoke", second], h.admin)).code).toBe(2); // --reason is required
  });
});
