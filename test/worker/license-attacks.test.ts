import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { grant, type Harness, startHarness } from "../server/harness.js";
import { codeOf, loadRuntime, optionsFor, pixels, type Served, serveModels } from "./setup.js";

let h: Harness;
let served: Served;
let licensor: { id: string; token: string };

beforeAll(async () => {
  h = await startHarness();
  licensor = await h.principal("lic", ["licensor"]);
  served = await serveModels(h);
});

async function client(over: Record<string, unknown> = {}) {
  const c = await h.principal(`c${Math.random()}`, ["client"]);
  await grant(h, licensor.token, c.id, { maxDevices: 10, ...over });
  return c;
}

describe("the runtime stops on genuine refusals only", () => {
  it("a revoked license: the next renewal is refused, the session is dropped and run() fails with ERR_LICENSE_REVOKED", async () => {
    const c = await client();
    const { runtime, events } = await loadRuntime(optionsFor(h, served), c.token);
    await runtime.run(pixels());
    const jti = runtime.licenseState().licenseId;
    expect((await h.call("POST", `/v1/licenses/${jti}/revoke`, licensor.token)).status).toBe(200);
    expect(await codeOf(runtime.renew())).toBe("ERR_LICENSE_REVOKED");
    expect(await codeOf(runtime.run(pixels()))).toBe("ERR_LICENSE_REVOKED");
    expect(runtime.licenseState().revoked).toBe("ERR_LICENSE_REVOKED");
    // The renewal tried to report usage first (refused for the revoked license), and said so.
    expect(events.some((e) => e.type === "usage-flushed")).toBe(true);
    expect(events.some((e) => e.type === "license-revoked" && e.code === "ERR_LICENSE_REVOKED")).toBe(true);
  });

  it("a credential refused at renewal (ERR_AUTH_INVALID) is not a refusal of the license: the model keeps running", async () => {
    const c = await client();
    const { runtime, events } = await loadRuntime(optionsFor(h, served), c.token);
    const keyId = /^mvk_([A-Za-z0-9_-]{12})_/.exec(c.token)?.[1] as string;
    expect((await h.call("DELETE", `/v1/admin/api-keys/${keyId}`, h.admin)).status).toBe(200);
    const state = await runtime.renew();
    expect(state.revoked).toBeNull();
    expect(events.some((e) => e.type === "license-expiring")).toBe(true);
    expect(events.some((e) => e.type === "license-revoked")).toBe(false);
    expect(await codeOf(runtime.run(pixels()))).toBe("ok");
  });

  it("an identity-provider outage at renewal is retried, not obeyed: the model keeps running and renews when it is back", async () => {
    const { publicKey, privateKey } = await generateKeyPair("RS256");
    const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "RS256", use: "sig" };
    const idp = { down: false };
    const server: Server = createServer((req, res) => {
      if (idp.down) return req.socket.destroy();
      res.setHeader("content-type", "application/json").end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    afterAll(() => new Promise<void>((r) => server.close(() => r())));
    const issuer = "https://idp.example";
    const oidc = await startHarness({
      options: {
        oidc: [
          { issuer, audience: "mv", jwksUri: `http://127.0.0.1:${(server.address() as AddressInfo).port}/k` },
        ],
      },
    });
    const lic = await oidc.principal("lic", ["licensor"]);
    const models = await serveModels(oidc);
    const alice = await oidc.call("POST", "/v1/admin/principals", oidc.admin, {
      name: "alice",
      roles: ["client"],
      oidc: { issuer, subject: "alice" },
    });
    await grant(oidc, lic.token, alice.body.id);
    const idToken = () =>
      new SignJWT({ sub: "alice", aud: "mv" })
        .setProtectedHeader({ alg: "RS256", kid: "k1" })
        .setIssuer(issuer)
        .setIssuedAt(oidc.clock.now())
        .setExpirationTime(oidc.clock.now() + 300)
        .sign(privateKey);
    const { runtime, events } = await loadRuntime(optionsFor(oidc, models), idToken);
    expect(await codeOf(runtime.run(pixels()))).toBe("ok");
    // The provider goes down past jose's key cache (10 minutes): renewal meets a 503.
    idp.down = true;
    const later = Date.now() + 11 * 60_000;
    const clock = vi.spyOn(Date, "now").mockImplementation(() => later);
    try {
      const during = await runtime.renew();
      expect(during.revoked).toBeNull();
      expect(events.filter((e) => e.type === "license-expiring").length).toBe(1);
      expect(await codeOf(runtime.run(pixels()))).toBe("ok");
      idp.down = false;
      const after = await runtime.renew();
      expect(after.renewals).toBe(1);
      expect(events.some((e) => e.type === "license-renewed")).toBe(true);
    } finally {
      clock.mockRestore();
    }
  });
});

describe("usage before renewal", () => {
  it("a device whose previous license went unreported answers ERR_USAGE_OVERDUE by reporting it, then loads", async () => {
    const c = await client({ reportGraceSeconds: 30 });
    const first = await loadRuntime(optionsFor(h, served), c.token);
    const previous = first.runtime.licenseState().licenseId;
    await first.runtime.dispose(); // never ran: no report was ever sent for this license
    h.clock.advance(120);
    const second = await loadRuntime(optionsFor(h, served), c.token, first.idb);
    expect(second.runtime.licenseState().licenseId).not.toBe(previous);
    const reports = await h.server.ctx.db.kysely
      .selectFrom("usage_reports")
      .select(["license_jti", "count"])
      .where("license_jti", "=", previous)
      .execute();
    expect(reports).toEqual([{ license_jti: previous, count: 0 }]);
  });
});

describe("the license must be for the model being loaded", () => {
  it("a license server (or proxy) answering with a valid license for another model is refused: ERR_LICENSE_WRONG_MODEL", async () => {
    // A proxy in front of the server swaps the model in license requests; the server then signs a
    // perfectly valid license, bound to this device, for the other model.
    const proxy = createServer();
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
    const origin = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    const behind = await startHarness({ options: { publicUrl: origin } });
    const lic = await behind.principal("lic", ["licensor"]);
    const models = await serveModels(behind, [{ id: "digits-other" }]);
    const c = await behind.principal("c", ["client"]);
    for (const modelId of ["digits", "digits-other"]) await grant(behind, lic.token, c.id, { modelId });
    proxy.on("request", (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (d) => chunks.push(d));
      req.on("end", () => {
        let body = Buffer.concat(chunks);
        if (req.method === "POST" && req.url === "/v1/licenses" && body.length > 0) {
          const json = JSON.parse(body.toString());
          json.model = { id: "digits-other", version: 1 };
          json.manifestDigest = models.digest["digits-other"];
          body = Buffer.from(JSON.stringify(json));
        }
        const headers = { ...req.headers, "content-length": String(body.length) };
        const upstream = request(`${behind.url}${req.url}`, { method: req.method, headers }, (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        });
        upstream.end(body);
      });
    });
    afterAll(() => new Promise<void>((r) => proxy.close(() => r())));
    const code = await codeOf(
      loadRuntime(optionsFor(behind, models, { licenseServer: origin, cache: false }), c.token),
    );
    expect(code).toBe("ERR_LICENSE_WRONG_MODEL");
    // The control: the same setup without the swap loads.
    proxy.removeAllListeners("request");
    proxy.on("request", (req, res) => {
      const upstream = request(
        `${behind.url}${req.url}`,
        { method: req.method, headers: req.headers },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      req.pipe(upstream);
    });
    expect(
      await codeOf(loadRuntime(optionsFor(behind, models, { licenseServer: origin, cache: false }), c.token)),
    ).toBe("ok");
  });
});

describe("the offline allowance applies only while offline", () => {
  it("an online device past its license's exp is refused, even within offline_until", async () => {
    const c = await client({ licenseTtlSeconds: 600, offlineSeconds: 3600 });
    const { runtime } = await loadRuntime(optionsFor(h, served), c.token);
    expect(await codeOf(runtime.run(pixels()))).toBe("ok");
    const real = performance.now.bind(performance);
    // 700 s later by the runtime's monotonic clock: past exp (600 s), well inside offline_until.
    const jump = vi.spyOn(performance, "now").mockImplementation(() => real() + 700_000);
    try {
      expect(await codeOf(runtime.run(pixels()))).toBe("ERR_LICENSE_EXPIRED");
    } finally {
      jump.mockRestore();
    }
  });
});
