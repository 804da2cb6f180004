/** The license server (Node). */
export { verifyAuditLog } from "./audit/verify-audit.js";
export { bootstrapAdmin } from "./bootstrap.js";
export { createApp } from "./http/app.js";
export { ROUTE_TABLE } from "./http/define-route.js";
export type { ServerOptions } from "./options.js";
export { createServerContext, type RunningServer, startServer } from "./start-server.js";
