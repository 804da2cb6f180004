import { request } from "node:http";
import { beforeAll, describe, expect, it } from "vitest";
import { grant, type Harness, registerDigits, startHarness, TestDevice } from "./harness.js";

let h: Harness;
let licensor: { id: string; token: string };
let client: { id: string; token: string };

beforeAll(async () => {
  h = await startHarness();
  licensor = await h.principal("lic", ["licensor"]);
  client = await h.principal("client", ["client"]);
});

/** Row counts and the audit head: a refused request must leave all of them as they were. */
async function snapshot() {
  const db = h.server.ctx.db.kysely;
  const count = async (t: "entitlements" | "audit_log" | "principals") =>
    Number(
      (
        await db
          .selectFrom(t)
          .select((eb) => eb.fn.countAll().as("n"))
          .executeTakeFirstOrThrow()
      ).n,
    );
  return { entitlements: await count("entitlements"), principals: await count("principals") };
}

function rawPost(
  path: string,
  body: Buffer | string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, h.url);
    const req = request(url, { method: "POST", headers }, (res) => {
      let text = "";
      res.on("data", (c) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

const valid = () => ({
  principalId: client.id,
  modelId: "digits",
  scopes: ["infer"],
  quota: 10,
  periodSeconds: 3600,
  maxDevices: 1,
  expiresAt: h.clock.now() + 3600,
});

describe("bad input never reaches a 500 and never changes state", () => {
  const auth = () => ({ authorization: `Bearer ${licensor.token}` });

  it.each([
    ["truncated JSON", '{"principalId": "x"', 400, "ERR_REQUEST_INVALID"],
    ["trailing garbage", '{"a":1} x', 400, "ERR_REQUEST_INVALID"],
    ["a comment", '{/* c */"a":1}', 400, "ERR_REQUEST_INVALID"],
    ["NaN", '{"quota": NaN}', 400, "ERR_REQUEST_INVALID"],
    ["a top-level array", "[1,2]", 400, "ERR_REQUEST_INVALID"],
    ["a top-level string", '"x"', 400, "ERR_REQUEST_INVALID"],
    ["an empty body", "", 400, "ERR_REQUEST_INVALID"],
    ["10,000 nested arrays", `${"[".repeat(10_000)}${"]".repeat(10_000)}`, 400, "ERR_REQUEST_INVALID"],
  ])("%s is refused", async (_, body, status, code) => {
    const before = await snapshot();
    const r = await rawPost("/v1/entitlements", body, { ...auth(), "content-type": "application/json" });
    expect(r.status).toBe(status);
    expect(JSON.parse(r.body).error.code).toBe(code);
    expect(r.body).not.toMatch(/at .*\.ts:\d+/);
    expect(await snapshot()).toEqual(before);
  });

  it("invalid UTF-8 (overlong, lone surrogate) is refused; a leading BOM is ignored (RFC 8259 §8.1)", async () => {
    const before = await snapshot();
    for (const bytes of [
      Buffer.from([0x7b, 0x22, 0xc0, 0xaf, 0x22, 0x3a, 0x31, 0x7d]),
      Buffer.from([0x7b, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x3a, 0x31, 0x7d]),
    ]) {
      const r = await rawPost("/v1/entitlements", bytes, { ...auth(), "content-type": "application/json" });
      expect(r.status).toBe(400);
      expect(JSON.parse(r.body).error.code).toBe("ERR_REQUEST_INVALID");
    }
    expect(await snapshot()).toEqual(before);
    const bom = await rawPost("/v1/entitlements", `\ufeff${JSON.stringify(valid())}`, {
      ...auth(),
      "content-type": "application/json",
    });
    expect(bom.status).toBe(201);
  });

  it.each([
    ["quota as a string", { quota: "10" }, "quota"],
    ["quota 1e400 (Infinity)", '{"quota": 1e400}', "quota"],
    ["quota 2^53", { quota: 2 ** 53 }, "quota"],
    ["quota -1", { quota: -1 }, "quota"],
    ["quota 1.5", { quota: 1.5 }, "quota"],
    ["quota 0 (never 'unlimited')", { quota: 0 }, "quota"],
    ["licenseTtlSeconds 0 (never 'unlimited')", { licenseTtlSeconds: 0 }, "licenseTtlSeconds"],
    ["licenseTtlSeconds above a day", { licenseTtlSeconds: 86_401 }, "licenseTtlSeconds"],
    ["periodSeconds 0", { periodSeconds: 0 }, "periodSeconds"],
    ["maxDevices 0", { maxDevices: 0 }, "maxDevices"],
    ["offlineSeconds -1", { scopes: ["infer", "offline"], offlineSeconds: -1 }, "offlineSeconds"],
    [
      "offlineSeconds above 90 days",
      { scopes: ["infer", "offline"], offlineSeconds: 90 * 86_400 + 1 },
      "offlineSeconds",
    ],
    ["reportGraceSeconds 0", { reportGraceSeconds: 0 }, "reportGraceSeconds"],
    ["scopes as an object", { scopes: { infer: true } }, "scopes"],
    ["null principal", { principalId: null }, "principalId"],
    ["an unknown field", { role: "admin" }, "role"],
    ["offline without the scope", { offlineSeconds: 10 }, "offlineSeconds"],
    ["an expiry in the past", { expiresAt: 1 }, "expiresAt"],
    ["a homoglyph model id", { modelId: "digіts" }, "modelId"],
    ["a model id with a bidi override", { modelId: "a\u202eb" }, "modelId"],
  ])("%s → 400 naming the field", async (_, change, field) => {
    const before = await snapshot();
    // Strings are spliced in raw, for numbers JSON.stringify cannot write.
    const body =
      typeof change === "string"
        ? `${JSON.stringify(valid()).slice(0, -1)},${change.slice(1)}`
        : { ...valid(), ...change };
    const r = await h.call("POST", "/v1/entitlements", licensor.token, body);
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe("ERR_REQUEST_INVALID");
    expect(r.body.error.data.path).toBe(field);
    expect(await snapshot()).toEqual(before);
  });

  it("__proto__ and constructor keys are refused and do not pollute prototypes", async () => {
    const r = await rawPost(
      "/v1/entitlements",
      `{"__proto__": {"polluted": true}, "constructor": {"prototype": {"x": 1}}}`,
      {
        ...auth(),
        "content-type": "application/json",
      },
    );
    expect(r.status).toBe(400);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it("duplicate members: the last one wins, and is then validated", async () => {
    const r = await rawPost(
      "/v1/admin/principals",
      '{"name":"dup","roles":["client"],"roles":["admin","auditor"]}',
      {
        authorization: `Bearer ${h.admin}`,
        "content-type": "application/json",
      },
    );
    expect(r.status).toBe(409);
    expect(JSON.parse(r.body).error.code).toBe("ERR_ROLE_CONFLICT");
  });

  it("an oversized body is 413 before parsing, with or without Content-Length", async () => {
    const before = await snapshot();
    const big = JSON.stringify({ ...valid(), pad: "x".repeat(70_000) });
    const declared = await rawPost("/v1/entitlements", big, {
      ...auth(),
      "content-type": "application/json",
    });
    expect(declared.status).toBe(413);
    const chunked = await rawPost("/v1/entitlements", big, {
      ...auth(),
      "content-type": "application/json",
      "transfer-encoding": "chunked",
    });
    expect(chunked.status).toBe(413);
    expect(JSON.parse(chunked.body).error.code).toBe("ERR_REQUEST_TOO_LARGE");
    expect(await snapshot()).toEqual(before);
  });

  it("wrong content type → 415; unknown route → 404; wrong method → 405", async () => {
    const r = await rawPost("/v1/entitlements", JSON.stringify(valid()), {
      ...auth(),
      "content-type": "text/plain",
    });
    expect(r.status).toBe(415);
    expect((await h.call("GET", "/v1/nothing", licensor.token)).status).toBe(404);
    const m = await h.call("DELETE", "/v1/entitlements", licensor.token);
    expect(m.status).toBe(405);
    expect(m.body.error.code).toBe("ERR_METHOD_NOT_ALLOWED");
  });

  it("oversized Authorization and DPoP headers are 431 before any crypto", async () => {
    const r = await h.call("GET", "/v1/anomalies", "a".repeat(9000));
    expect(r.status).toBe(431);
    const huge = await h.call("GET", "/v1/anomalies", "a".repeat(20_000));
    expect(huge.status).toBe(431);
  });

  it("rate-limits failed authentications per client (429 with Retry-After), not valid keys from the same address", async () => {
    const other = await startHarness({ options: { rateLimits: { authFailuresPerMinute: 5 } } });
    const codes: number[] = [];
    for (let i = 0; i < 8; i++)
      codes.push(
        (await other.call("GET", "/v1/anomalies", `mvk_${"A".repeat(12)}_${"B".repeat(43)}`)).status,
      );
    expect(codes).toEqual([401, 401, 401, 401, 401, 429, 429, 429]);
    const limited = await other.call("GET", "/v1/anomalies", `mvk_${"C".repeat(12)}_${"B".repeat(43)}`);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    // Someone else's valid key behind the same address is not refused for those failures.
    expect((await other.call("GET", "/v1/admin/principals", other.admin)).status).toBe(200);
  });

  it("sends security headers and CORS only to allow-listed origins", async () => {
    const other = await startHarness({ options: { corsOrigins: ["https://app.example"] } });
    const ok = await other.call("GET", "/healthz", undefined, undefined, { origin: "https://app.example" });
    expect(ok.headers.get("access-control-allow-origin")).toBe("https://app.example");
    expect(ok.headers.get("access-control-expose-headers")).toContain("DPoP-Nonce");
    expect(ok.headers.get("x-content-type-options")).toBe("nosniff");
    const evil = await other.call("GET", "/healthz", undefined, undefined, {
      origin: "https://evil.example",
    });
    expect(evil.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("logs carry no secrets, and escape injected control and bidi characters", async () => {
    const publisher = await h.principal("pub", ["publisher"]);
    const { digest } = await registerDigits(h, publisher);
    await grant(h, licensor.token, client.id);
    const device = await TestDevice.create();
    const lic = await device.license(h, client.token, {
      model: { id: "digits", version: 1 },
      manifestDigest: digest,
    });
    await h.call("GET", '/v1/nope\n{"level":"error"}\u202e\u001b[31m', client.token);
    const text = JSON.stringify(h.logs);
    for (const secret of [h.admin, licensor.token, client.token, lic.body.license])
      expect(text).not.toContain(secret.slice(10));
    expect(text).not.toMatch(/eyJ[A-Za-z0-9_-]{20,}/);
    expect(text).not.toContain("\u202e");
    expect(h.logs.every((l) => typeof l.time === "string" && (l.time as string).endsWith("Z"))).toBe(true);
  });
});
