// Exposes the unchanged core to Playwright, to show it runs in a browser as it does in Node.
import * as core from "../../../src/core/index.js";

(globalThis as unknown as { mvCore: typeof core }).mvCore = core;
document.title = "core ready";
