/** Serves the repository through Vite on loopback for the browser tests. */
import { createServer } from "vite";

const port = Number(process.argv[2] ?? 5199);
const server = await createServer({
  configFile: "vite.config.ts",
  server: { port, host: "127.0.0.1", strictPort: true },
});
await server.listen();
console.log(`test server on http://127.0.0.1:${port}`);
const stop = () => server.close().then(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
