import { expect, test } from "@playwright/test";

/** The demo exactly as `npm start` runs it (second webServer in playwright.config.ts). */
const DEMO = `http://127.0.0.1:${Number(process.env.MODELVAULT_TEST_PORT ?? 5199) + 200}`;

/**
 * Non-extractable keys stop export, not use (W3C WebCrypto, security considerations): a script
 * injected into the page could use them. The demo's Content-Security-Policy is what stops such a
 * script from running; this checks Chromium enforces it (checklist C8).
 */
test("the demo's Content-Security-Policy: Chromium refuses an injected inline script and an inline event handler", async ({
  page,
}) => {
  await page.goto(DEMO);
  const policy =
    (await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute("content")) ?? "";
  const scriptSrc = policy.split(";").find((d) => d.trim().startsWith("script-src")) ?? "";
  // Scripts from the page's own origin only; WebAssembly may compile, nothing may eval.
  expect(scriptSrc.trim()).toBe("script-src 'self' 'wasm-unsafe-eval'");
  const outcome = await page.evaluate(async () => {
    const w = window as unknown as Record<string, unknown>;
    const violations: string[] = [];
    document.addEventListener("securitypolicyviolation", (e) => violations.push(e.effectiveDirective));
    const script = document.createElement("script");
    script.textContent = "window.__inlineRan = true";
    document.head.append(script);
    const button = document.createElement("button");
    button.setAttribute("onclick", "window.__handlerRan = true");
    document.body.append(button);
    button.click();
    await new Promise((r) => setTimeout(r, 200));
    return {
      inline: w.__inlineRan === true,
      handler: w.__handlerRan === true,
      violations: [...new Set(violations)].sort(),
    };
  });
  expect(outcome).toEqual({
    inline: false,
    handler: false,
    violations: ["script-src-attr", "script-src-elem"],
  });
});
