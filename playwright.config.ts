import { defineConfig } from "@playwright/test";
import { CHROMIUM_ARGS, chromiumPath } from "./test/browser/chromium.js";

const port = Number(process.env.MODELVAULT_TEST_PORT ?? 5199);

export default defineConfig({
  testDir: "test/browser",
  testMatch: "**/*.spec.ts",
  timeout: 120_000,
  workers: 1,
  reporter: [["list"]],
  outputDir: "test-results",
  globalSetup: "./test/browser/global-setup.ts",
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    browserName: "chromium",
    launchOptions: { executablePath: chromiumPath(), args: [...CHROMIUM_ARGS, "--disable-gpu"] },
    screenshot: "only-on-failure",
  },
  webServer: [
    {
      command: `node --import tsx test/browser/serve.ts ${port} ${port + 100}`,
      url: `http://127.0.0.1:${port}/test/browser/pages/core.html`,
      reuseExistingServer: false,
      timeout: 60_000,
      stdout: "pipe",
    },
    {
      // The demo started exactly as `npm start` starts it, on its own ports and a fresh data folder.
      command: "rm -rf test-results/demo-data && npm start",
      url: `http://127.0.0.1:${port + 200}/`,
      env: {
        MODELVAULT_DATA: "test-results/demo-data",
        MODELVAULT_DEMO_PORT: String(port + 200),
        MODELVAULT_SERVER_PORT: String(port + 300),
      },
      reuseExistingServer: false,
      timeout: 120_000,
      stdout: "pipe",
    },
  ],
});
