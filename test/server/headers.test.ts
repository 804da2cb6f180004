import { beforeAll, describe, expect, it } from "vitest";
import { type Harness, startHarness } from "./harness.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});

/**
 * The API's responses are data, never documents: a Content-Security-Policy that allows nothing
 * (so a JSON body opened as a page runs no script and cannot be framed), no sniffing, no
 * referrer, and no caching of anything but the public JWKS (checklist C8, J8).
 */
const EXPECTED = {
  "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
};

describe("security headers on every API response", () => {
  it("success, refusal, unknown route, wrong method and the JWKS all carry the strict policy", async () => {
    const responses = {
      ok: await h.call("GET", "/v1/admin/principals", h.admin),
      unauthenticated: await h.call("GET", "/v1/admin/principals"),
      refused: await h.call("POST", "/v1/licenses", h.admin, {}),
      missing: await h.call("GET", "/nope"),
      method: await h.call("DELETE", "/v1/usage", h.admin),
      jwks: await h.call("GET", "/.well-known/jwks.json"),
    };
    expect(Object.fromEntries(Object.entries(responses).map(([k, r]) => [k, r.status]))).toEqual({
      ok: 200,
      unauthenticated: 401,
      refused: 403,
      missing: 404,
      method: 405,
      jwks: 200,
    });
    for (const [name, r] of Object.entries(responses)) {
      for (const [header, value] of Object.entries(EXPECTED))
        expect(r.headers.get(header), `${name} ${header}`).toBe(value);
      expect(r.headers.get("content-type"), name).toMatch(/^application\/json/);
    }
    for (const name of ["ok", "unauthenticated", "refused", "missing", "method"] as const)
      expect(responses[name].headers.get("cache-control"), name).toBe("no-store");
    expect(responses.jwks.headers.get("cache-control")).toBe("public, max-age=300");
    // No HSTS over plain HTTP (it is sent when the server terminates TLS itself).
    expect(responses.ok.headers.get("strict-transport-security")).toBeNull();
  });
});
