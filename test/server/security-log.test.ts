import { beforeAll, describe, expect, it } from "vitest";
import { grant, type Harness, registerDigits, startHarness, TestDevice } from "./harness.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ options: { rateLimits: { perPrincipalPerMinute: 50 } } });
});

type Line = Record<string, unknown>;
const requestLines = () => h.logs.filter((l) => l.msg === "request" || l.message === "request");

/**
 * Every refusal that matters to security is in the log with who, what, when (UTC), where and
 * why (ASVS 16.2.1, 16.2.2, 16.3): a bad credential, a forbidden route, a replayed DPoP proof,
 * a rate-limited principal.
 */
describe("security events in the request log (H6)", () => {
  it("a bad credential, a forbidden route, a replayed proof and a rate limit each log who, what, when, where and why", async () => {
    const publisher = await h.principal("pub", ["publisher"]);
    const licensor = await h.principal("lic", ["licensor"]);
    const client = await h.principal("c", ["client"]);
    const { digest } = await registerDigits(h, publisher);
    await grant(h, licensor.token, client.id);
    const mark = h.logs.length;

    await h.call("GET", "/v1/anomalies", `mvk_${"A".repeat(12)}_${"B".repeat(43)}`);
    await h.call("GET", "/v1/audit", client.token);
    const device = await TestDevice.create();
    const body = { model: { id: "digits", version: 1 }, manifestDigest: digest };
    await device.license(h, client.token, body);
    const proof = await device.proof(h);
    const full = { ...body, agreementKey: device.agreeJwk };
    await h.call("POST", "/v1/licenses", client.token, full, { dpop: proof });
    await h.call("POST", "/v1/licenses", client.token, full, { dpop: proof });
    for (let i = 0; i < 51; i++) await h.call("GET", "/v1/me/licenses", client.token);

    const lines = requestLines().filter((_, i, all) => h.logs.indexOf(all[i] as Line) >= mark);
    const find = (code: string) => lines.find((l) => l.code === code);
    for (const [code, status, principal] of [
      ["ERR_AUTH_INVALID", 401, null],
      ["ERR_FORBIDDEN", 403, client.id],
      ["ERR_DPOP_REPLAY", 401, client.id],
      ["ERR_RATE_LIMITED", 429, client.id],
    ] as const) {
      const line = find(code);
      expect(line, code).toMatchObject({
        status,
        ip: "127.0.0.1",
        method: expect.any(String),
        route: expect.any(String),
      });
      expect(String(line?.time), code).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      if (principal === null) expect(line?.principal, code).toBeNull();
      else expect(JSON.stringify(line?.principal), code).toContain(principal);
    }
  });
});
