/**
 * The operations console, per role, against a real license server on SQLite and (with
 * MODELVAULT_TEST_PG_URL) PostgreSQL: what each role sees and may do, the API refusing what the
 * console does not offer, and output monitoring catching a device pushed to one class.
 */
import { expect, type Page, test } from "@playwright/test";
import { openDevice } from "./console-device.js";
import {
  type ConsoleServer,
  DEVICE_DIGITS,
  DIALECTS,
  HELD_OUT,
  startConsoleServer,
} from "./console-server.js";

const PAGES_ORIGIN = `http://127.0.0.1:${process.env.MODELVAULT_TEST_PORT ?? 5199}`;

async function signIn(page: Page, server: ConsoleServer, token: string): Promise<void> {
  await page.goto(`${server.url}/console/`);
  await page.getByLabel("API key or ID token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("who")).toBeVisible();
}

const nav = (page: Page) => page.getByRole("navigation", { name: "pages" }).first();

async function confirm(page: Page, verb: string): Promise<void> {
  await page.locator("dialog[open]").getByRole("button", { name: verb, exact: true }).click();
}

for (const dialect of DIALECTS) {
  test.describe(`console (${dialect})`, () => {
    test.describe.configure({ mode: "serial" });
    let server: ConsoleServer;
    let client: { id: string; token: string };
    let revokedDevice: string;

    test.beforeAll(async () => {
      server = await startConsoleServer(dialect, PAGES_ORIGIN);
    });
    test.afterAll(async () => {
      await server?.close();
    });

    test("admin creates a principal and issues its key; no licensing pages", async ({ page }) => {
      await signIn(page, server, server.admin);
      await expect(nav(page).getByRole("link", { name: "Principals" })).toBeVisible();
      await expect(nav(page).getByRole("link", { name: "Entitlements" })).toHaveCount(0);
      await expect(nav(page).getByRole("link", { name: "Audit" })).toHaveCount(0);
      await nav(page).getByRole("link", { name: "Principals" }).click();
      await page.getByText("Create a principal").click();
      await page.getByLabel("Name").fill("acme-app");
      await page.getByRole("checkbox", { name: "client" }).check();
      await page.getByRole("button", { name: "Create", exact: true }).click();
      await confirm(page, "Create");
      await expect(page.getByTestId("audit-receipt")).toContainText("principal.create");
      await expect(page.getByRole("heading", { level: 1 })).toContainText("acme-app");
      const id = (await page.getByRole("heading", { level: 1 }).locator("code").textContent()) as string;
      await page.getByRole("button", { name: "Issue API key" }).click();
      await confirm(page, "Issue");
      await expect(page.getByTestId("audit-receipt")).toContainText("api-key.create");
      const token = (await page.getByTestId("new-key").locator("code").textContent()) as string;
      expect(token).toMatch(/^mvk_/);
      const me = await fetch(`${server.url}/v1/me`, { headers: { authorization: `Bearer ${token}` } });
      expect(((await me.json()) as { roles: string[] }).roles).toEqual(["client"]);
      client = { id, token };
    });

    test("licensor grants, sees the device appear after loadModel, revokes it; its next renewal is refused", async ({
      page,
      browser,
    }) => {
      await signIn(page, server, server.licensor.token);
      await expect(nav(page).getByRole("link", { name: "Principals" })).toHaveCount(0);
      await expect(nav(page).getByRole("link", { name: "Audit" })).toHaveCount(0);
      await nav(page).getByRole("link", { name: "Entitlements" }).click();
      await page.getByText("Grant an entitlement").click();
      await page.getByLabel("Principal id").fill(client.id);
      await page.getByLabel("Model").selectOption("digits");
      await page.getByLabel("Quota (inferences per period)").fill("5000");
      await page.getByRole("button", { name: "Grant", exact: true }).click();
      await confirm(page, "Grant");
      await expect(page.getByTestId("audit-receipt")).toContainText("entitlement.grant");
      await expect(page.getByRole("cell", { name: "acme-app" })).toBeVisible();

      const device = await openDevice(browser, {
        licenseServer: server.url,
        credential: client.token,
        manifest: server.manifests.digits,
        publisherKey: server.publisherKey,
      });
      expect(await device.run(DEVICE_DIGITS.slice(0, 10))).toHaveLength(10);
      await nav(page).getByRole("link", { name: "Devices" }).click();
      await page.getByLabel("Search").fill("acme");
      await page.getByRole("button", { name: "Search" }).click();
      await page.locator(`[data-testid=device-link][title="${device.id}"]`).click();
      await page.getByTestId("revoke-device").click();
      await confirm(page, "Revoke");
      await expect(page.getByTestId("audit-receipt")).toContainText("device.revoke");
      await expect(page.getByText("revoked").first()).toBeVisible();
      expect(await device.renew()).toBe("ERR_DEVICE_REVOKED");
      revokedDevice = device.id;
      await device.context.close();
    });

    test("auditor verifies the log in the browser, has no revoke button, and gets 403 from the API", async ({
      page,
    }) => {
      // A signed checkpoint for the browser to check the chain against.
      await server.call(server.admin, "POST", "/v1/audit/checkpoints");
      await signIn(page, server, server.auditor.token);
      await expect(nav(page).getByRole("link", { name: "Principals" })).toHaveCount(0);
      await nav(page).getByRole("link", { name: "Audit" }).click();
      await expect(page.getByRole("cell", { name: "device.revoke" })).toBeVisible();
      await page.getByRole("button", { name: "Verify chain and checkpoints" }).click();
      await expect(page.getByTestId("verify-result")).toContainText(
        /Verified: \d+ entries chain correctly; 1 signed checkpoints match/,
      );
      await page.goto(`${server.url}/console/#/devices?id=${encodeURIComponent(revokedDevice)}`);
      await expect(page.getByRole("heading", { name: /Device/ })).toBeVisible();
      await expect(page.getByRole("button", { name: /Revoke/ })).toHaveCount(0);
      await nav(page).getByRole("link", { name: "Entitlements" }).click();
      await expect(page.getByRole("cell", { name: "acme-app" })).toBeVisible();
      await expect(page.getByRole("button", { name: /Revoke|Grant/ })).toHaveCount(0);
      const refused = await page.evaluate(
        async ({ token, id }) =>
          (
            await fetch(`/v1/devices/${id}/revoke`, {
              method: "POST",
              headers: { authorization: `Bearer ${token}` },
            })
          ).status,
        { token: server.auditor.token, id: revokedDevice },
      );
      expect(refused).toBe(403);
    });

    test("monitoring: a device pushed to one class raises output_outlier, shown in the console; ordinary devices raise nothing; only counts are stored", async ({
      page,
      browser,
    }) => {
      const newClient = async (name: string) => {
        const p = await server.call(server.admin, "POST", "/v1/admin/principals", {
          name,
          roles: ["client"],
        });
        const key = await server.call(server.admin, "POST", `/v1/admin/principals/${p.id}/api-keys`);
        await server.call(server.licensor.token, "POST", "/v1/entitlements", {
          principalId: p.id,
          modelId: "digits-monitored",
          scopes: ["infer"],
          quota: 100_000,
          periodSeconds: 86400,
          licenseAllowance: 1000,
          maxDevices: 5,
          expiresAt: Math.floor(Date.now() / 1000) + 86400,
        });
        return key.token as string;
      };
      const open = async (credential: string) =>
        openDevice(browser, {
          licenseServer: server.url,
          credential,
          manifest: server.manifests.monitored,
          publisherKey: server.publisherKey,
        });
      const anomalies = async () =>
        (
          (await server.call(server.auditor.token, "GET", "/v1/anomalies?limit=1000")) as unknown as {
            anomalies: { kind: string; device_id: string | null; detail: Record<string, unknown> }[];
          }
        ).anomalies.filter((a) => a.kind.startsWith("output_"));

      // Three ordinary devices, each on its own 200 held-out digits.
      const ordinary = await newClient("ordinary-app");
      const devices: string[] = [];
      for (let i = 0; i < 3; i++) {
        const d = await open(ordinary);
        await d.run(DEVICE_DIGITS.slice(i * 200, i * 200 + 200));
        expect((await d.flush()).pending).toBe(0);
        devices.push(d.id);
        await d.context.close();
      }
      expect(await anomalies()).toEqual([]);

      // A probing script: every input one digit (all held-out sevens), so its outputs are one class.
      const prober = await open(await newClient("probe-app"));
      const classes = await prober.run(HELD_OUT.filter((d) => d.label === 7));
      expect(classes.filter((c) => c === 7).length / classes.length).toBeGreaterThan(0.9);
      expect((await prober.flush()).pending).toBe(0);
      await prober.context.close();
      const raised = await anomalies();
      expect(raised.filter((a) => a.kind === "output_outlier").map((a) => a.device_id)).toEqual([prober.id]);
      expect(raised.some((a) => a.device_id !== null && devices.includes(a.device_id))).toBe(false);

      // Stored rows: per report and output, counts per class and their total; nothing per inference.
      const rows = await server.sql("select * from output_aggregates");
      expect(rows.length).toBe(4);
      for (const r of rows) {
        expect(Object.keys(r).sort()).toEqual(
          [
            "counts",
            "device_id",
            "entitlement_id",
            "model_id",
            "model_version",
            "output",
            "received_at",
            "seq",
            "total",
          ].sort(),
        );
        const counts = JSON.parse(r.counts as string) as number[];
        expect(counts).toHaveLength(10);
        expect(counts.reduce((a, b) => a + b, 0)).toBe(Number(r.total));
      }
      const reportColumns = Object.keys((await server.sql("select * from usage_reports limit 1"))[0] ?? {});
      expect(reportColumns.sort()).toEqual(
        [
          "count",
          "device_id",
          "hash",
          "license_jti",
          "prev",
          "received_at",
          "seq",
          "window_from",
          "window_to",
        ].sort(),
      );

      // The auditor sees it in the console, with the evidence drawn against the baseline.
      await signIn(page, server, server.auditor.token);
      await page.goto(`${server.url}/console/#/anomalies?kind=output_outlier`);
      const card = page.locator("[data-testid=anomaly][data-kind=output_outlier]");
      await expect(card).toHaveCount(1);
      await card.getByText("Evidence").click();
      await expect(card.locator("svg.chart")).toBeVisible();
      await expect(card.locator("pre.detail")).toContainText('"against"');
    });

    test("screenshots of every page at desktop and phone width (MODELVAULT_CONSOLE_SCREENSHOTS=DIR)", async ({
      page,
    }) => {
      const dir = process.env.MODELVAULT_CONSOLE_SCREENSHOTS;
      test.skip(!dir || dialect !== "sqlite", "set MODELVAULT_CONSOLE_SCREENSHOTS to a folder to take them");
      const shots: [string, string, string][] = [
        ["overview", "auditor", "#/overview"],
        ["models", "admin", "#/models"],
        ["entitlements", "licensor", "#/entitlements"],
        ["devices", "licensor", "#/devices"],
        ["device", "licensor", `#/devices?id=${encodeURIComponent(revokedDevice)}`],
        ["usage", "auditor", "#/usage"],
        ["anomalies", "auditor", "#/anomalies"],
        ["audit", "auditor", "#/audit"],
        ["principals", "admin", "#/principals"],
      ];
      const tokens: Record<string, string> = {
        admin: server.admin,
        licensor: server.licensor.token,
        auditor: server.auditor.token,
      };
      for (const [width, height, suffix] of [
        [1280, 860, "desktop"],
        [390, 844, "phone"],
      ] as const) {
        await page.setViewportSize({ width, height });
        await page.goto(`${server.url}/console/`);
        await page.screenshot({ path: `${dir}/signin-${suffix}.png` });
        for (const [name, role, hash] of shots) {
          await page.goto(`${server.url}/console/`);
          await page.evaluate(() => sessionStorage.clear());
          await signIn(page, server, tokens[role] as string);
          await page.evaluate((h) => {
            location.hash = h;
          }, hash);
          await expect(page.getByText("Loading…")).toHaveCount(0);
          if (name === "anomalies") await page.getByText("Evidence").first().click();
          if (name === "audit") {
            await page.getByRole("button", { name: "Verify chain and checkpoints" }).click();
            await expect(page.getByTestId("verify-result")).toContainText("Verified");
          }
          await page.screenshot({ path: `${dir}/${name}-${suffix}.png`, fullPage: true });
        }
      }
    });
  });
}
