/** The `modelvault` command: the only place that touches process.argv and the exit code. */
import { processIo } from "./cli/io.js";
import { main } from "./cli/main.js";

process.exitCode = await main(process.argv.slice(2), processIo);
