import { expect, type Page, test } from "@playwright/test";

/** The demo exactly as `npm start` runs it (second webServer in playwright.config.ts). */
const DEMO = `http://127.0.0.1:${Number(process.env.MODELVAULT_TEST_PORT ?? 5199) + 200}`;
const shot = (page: Page, name: string) =>
  page.screenshot({ path: `test-results/demo-${name}.png`, fullPage: true });

async function ready(page: Page) {
  await expect(page.locator("#status")).toHaveText(/^ready in \d+ ms/, { timeout: 60_000 });
}

/** Draws a stroke through the given points (fractions of the pad) with mouse events. */
async function stroke(page: Page, points: [number, number][]) {
  const box = await page.locator("#pad").boundingBox();
  if (!box) throw new Error("no pad");
  const at = ([x, y]: [number, number]) => [box.x + x * box.width, box.y + y * box.height] as const;
  await page.mouse.move(...at(points[0] as [number, number]));
  await page.mouse.down();
  for (const p of points.slice(1)) await page.mouse.move(...at(p), { steps: 4 });
  await page.mouse.up();
}

test("the demo, as npm start runs it: draw, license, renewal, usage, offline, tamper, revoke", async ({
  page,
}) => {
  test.setTimeout(180_000);
  const errors: string[] = [];
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(DEMO);
  await ready(page);
  await expect(page.locator("#backend")).toContainText("WASM");
  await expect(page.locator("#manifest")).toContainText("digits v1, signed by");

  // Draw a 1: a vertical stroke.
  await stroke(page, [
    [0.5, 0.15],
    [0.5, 0.5],
    [0.5, 0.85],
  ]);
  await expect(page.locator("#label")).toHaveText("1");
  await page.locator("#clear").click();
  // Draw a 0: a closed loop.
  const loop: [number, number][] = Array.from({ length: 25 }, (_, i) => [
    0.5 + 0.22 * Math.sin((i / 24) * 2 * Math.PI),
    0.5 - 0.32 * Math.cos((i / 24) * 2 * Math.PI),
  ]);
  await stroke(page, loop);
  await expect(page.locator("#label")).toHaveText("0");
  await expect(page.locator("#runs")).toHaveText("2");
  await shot(page, "prediction");
  expect(errors).toEqual([]);

  // The license counts down.
  const first = await page.locator("#expires").textContent();
  await page.waitForTimeout(2100);
  const later = await page.locator("#expires").textContent();
  const seconds = (t: string | null) => {
    const [m, s] = (t ?? "0:0").split(":").map(Number);
    return (m as number) * 60 + (s as number);
  };
  expect(seconds(later)).toBeLessThan(seconds(first));
  expect(seconds(first)).toBeLessThanOrEqual(120);

  // A renewal sends the usage first; the server then holds it.
  await page.locator("#renew").click();
  await expect(page.locator("#renewals")).toHaveText("1");
  await expect(page.locator("#acked")).not.toHaveText("0");
  await expect(page.locator("#server-usage")).toContainText("2 inferences");
  await shot(page, "renewed");

  // Offline (license server and model files unreachable): reload works from cache.
  await expect(page.locator("#log")).toContainText("cached for offline use");
  await Promise.all([page.waitForEvent("load"), page.locator("#offline").click()]);
  await ready(page);
  await expect(page.locator("#license-id")).toContainText("(offline)");
  await stroke(page, [
    [0.5, 0.15],
    [0.5, 0.85],
  ]);
  await expect(page.locator("#label")).toHaveText("1");
  await shot(page, "offline");
  await Promise.all([page.waitForEvent("load"), page.locator("#online").click()]);
  await ready(page);

  // A tampered copy is refused with the precise code.
  await page.locator("#tampered").click();
  await expect(page.locator("#status")).toHaveText("refused: ERR_SHARD_DIGEST_MISMATCH");
  await expect(page.locator("#log")).toContainText("ERR_SHARD_DIGEST_MISMATCH");
  await shot(page, "tampered");

  // Revoke this device: at the next renewal inference stops.
  await page.reload();
  await ready(page);
  await page.locator("#revoke").click();
  await expect(page.locator("#log")).toContainText("device revoked");
  await stroke(page, [
    [0.5, 0.15],
    [0.5, 0.85],
  ]);
  await expect(page.locator("#label")).toHaveText("1"); // still licensed until renewal
  await page.locator("#renew").click();
  await expect(page.locator("#log")).toContainText("ERR_DEVICE_REVOKED");
  await page.locator("#clear").click();
  await stroke(page, [
    [0.5, 0.15],
    [0.5, 0.85],
  ]);
  await expect(page.locator("#label")).toHaveText("✕");
  await expect(page.locator("#status")).toHaveText("refused: ERR_DEVICE_REVOKED");
  await shot(page, "revoked");
});

test("the demo reads well at phone width", async ({ browser }) => {
  const context = await browser.newContext({
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    hasTouch: true,
  });
  const page = await context.newPage();
  await page.goto(DEMO);
  await ready(page);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  expect(overflow).toBe(false);
  await page.screenshot({ path: "test-results/demo-phone.png", fullPage: true });
  await context.close();
});

test("after one visit, the demo starts with the browser itself offline", async ({ context, page }) => {
  test.setTimeout(120_000);
  await page.goto(DEMO);
  await ready(page);
  // The service worker takes over on the first visit; this reload is served through it.
  await page.reload();
  await ready(page);
  await expect(page.locator("#log")).toContainText("cached for offline use");
  await context.setOffline(true);
  try {
    await page.reload();
    await ready(page);
    await expect(page.locator("#license-id")).toContainText("(offline)");
    await stroke(page, [
      [0.5, 0.15],
      [0.5, 0.5],
      [0.5, 0.85],
    ]);
    await expect(page.locator("#label")).toHaveText("1");
  } finally {
    await context.setOffline(false);
  }
});
