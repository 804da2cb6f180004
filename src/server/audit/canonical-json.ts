// The one canonical JSON lives in core: the console verifies the audit chain with it in the browser.
export { canonicalJson } from "../../core/canonical-json.js";
