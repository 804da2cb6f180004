import { existsSync } from "node:fs";

/** Where to find Chromium: $MODELVAULT_CHROMIUM, then $CHROME_PATH, then Debian's and others' usual paths. */
export function chromiumPath(): string {
  const candidates = [
    process.env.MODELVAULT_CHROMIUM,
    process.env.CHROME_PATH,
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
  ].filter((p): p is string => Boolean(p));
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(
      "No Chromium found. Install one (Debian: apt-get install -y chromium) or set MODELVAULT_CHROMIUM " +
        `to its executable. Looked in: ${candidates.join(", ")}. (Browser downloads are never attempted.)`,
    );
  }
  return found;
}

/** Flags for a quiet, sandbox-less headless Chromium on a machine without outside network. */
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/** WebGPU on the CPU through SwiftShader: slow but real. */
export const WEBGPU_ARGS = [
  "--enable-unsafe-webgpu",
  "--enable-unsafe-swiftshader",
  "--use-webgpu-adapter=swiftshader",
];
