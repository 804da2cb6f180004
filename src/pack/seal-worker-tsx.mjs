// Development entry for the seal worker when running from TypeScript sources: workers do not
// inherit tsx's loader from the main thread, so register it here before loading the worker.
import { register } from "tsx/esm/api";

register();
await import("./seal-worker.ts");
