import { describe, expect, it } from "vitest";
import { pruneExpired } from "../../src/server/db/housekeeping.js";
import { DIALECTS, freshPostgres } from "./databases.js";
import { waitFor } from "./fault/serve-process.js";
import { grant, registerDigits, startHarness, TestDevice } from "./harness.js";

const model = { id: "digits", version: 1 };

describe.each(DIALECTS)("pruning (%s)", (dialect) => {
  it("deletes DPoP replay rows once no instance can accept their proofs, and keeps the rest refusing replays", async () => {
    const h = await startHarness(dialect === "postgres" ? { database: await freshPostgres() } : {});
    const publisher = await h.principal("pub", ["publisher"]);
    const licensor = await h.principal("lic", ["licensor"]);
    const client = await h.principal("c", ["client"]);
    const { digest } = await registerDigits(h, publisher);
    await grant(h, licensor.token, client.id, { maxDevices: 10 });
    const db = h.server.ctx.db;
    const rows = () => db.kysely.selectFrom("dpop_replay").select("key").execute();

    const d = await TestDevice.create();
    await d.license(h, client.token, { model, manifestDigest: digest });
    const replayed = await d.proof(h);
    const body = { model, manifestDigest: digest, agreementKey: d.agreeJwk };
    expect((await h.call("POST", "/v1/licenses", client.token, body, { dpop: replayed })).status).toBe(200);
    const before = (await rows()).length;
    expect(before).toBeGreaterThan(0);

    // While the proof can be accepted, pruning keeps its row and the replay is refused.
    h.clock.advance(30);
    expect(await pruneExpired(db, h.clock.now(), 60)).toMatchObject({ dpopReplay: 0 });
    const replay = await h.call("POST", "/v1/licenses", client.token, body, { dpop: replayed });
    expect(replay.body.error.code).toBe("ERR_DPOP_REPLAY");
    // Past its window but within the margin for instances' clock skew, the row stays too.
    h.clock.advance(2 * 60 + 1 + 60 - 30 - 1);
    expect(await pruneExpired(db, h.clock.now(), 60)).toMatchObject({ dpopReplay: 0 });
    expect((await rows()).length).toBe(before);

    // Past window + margin the rows go, by the server's own maintenance, and the old proof is
    // refused anyway: its iat is outside the window.
    h.clock.advance(2);
    await waitFor("maintenance to prune", async () => (await rows()).length === 0, 10_000);
    const late = await h.call("POST", "/v1/licenses", client.token, body, { dpop: replayed });
    expect(late.body.error.code).toBe("ERR_DPOP_INVALID");
    expect(late.body.error.data.reason).toBe("iat outside the acceptance window");
  });

  it("deletes failed-authentication counters of past minutes", async () => {
    const h = await startHarness(dialect === "postgres" ? { database: await freshPostgres() } : {});
    await h.call("GET", "/v1/admin/principals", `mvk_${"A".repeat(12)}_${"B".repeat(43)}`);
    const count = async () =>
      (await h.server.ctx.db.kysely.selectFrom("auth_failures").selectAll().execute()).length;
    expect(await count()).toBe(3);
    h.clock.advance(60);
    expect((await pruneExpired(h.server.ctx.db, h.clock.now(), 60)).authFailures).toBe(0);
    h.clock.advance(60);
    expect((await pruneExpired(h.server.ctx.db, h.clock.now(), 60)).authFailures).toBe(3);
    expect(await count()).toBe(0);
  });
});
