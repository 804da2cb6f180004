/** Packs one model in a fresh process and prints JSON with the time taken and the peak RSS. */
import { readFile } from "node:fs/promises";
import { packModel } from "../src/pack/pack-model.js";

const [modelPath, outDir, keysJson] = process.argv.slice(2) as [string, string, string];
const keys = JSON.parse(await readFile(keysJson, "utf8"));
const started = performance.now();
const result = await packModel({
  modelPath,
  id: "bench",
  version: 1,
  signingKey: keys.sign,
  recipient: keys.recipient,
  outDir,
  force: true,
});
const seconds = (performance.now() - started) / 1000;
process.stdout.write(
  `${JSON.stringify({ seconds, bytes: result.manifest.size, maxRssBytes: process.resourceUsage().maxRSS * 1024 })}\n`,
);
