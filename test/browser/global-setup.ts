/** Packs the digits model into test/browser/fixtures-out/ with fresh keys, once per run. */
import { mkdir, rm, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { generateKeyPairJwk } from "../../src/pack/keygen.js";
import { packModel } from "../../src/pack/pack-model.js";

export const FIXTURES = fileURLToPath(new URL("./fixtures-out/core/", import.meta.url));

export default async function globalSetup(): Promise<void> {
  await rm(FIXTURES, { recursive: true, force: true });
  await mkdir(FIXTURES, { recursive: true });
  const publisher = await generateKeyPairJwk("sig");
  const recipient = await generateKeyPairJwk("enc");
  await packModel({
    modelPath: fileURLToPath(new URL("../../models/digits/digits.onnx", import.meta.url)),
    id: "digits",
    version: 1,
    signingKey: publisher.privateJwk,
    recipient: recipient.publicJwk,
    insecureKeyOut: `${FIXTURES}content-key.json`,
    outDir: `${FIXTURES}digits`,
    shardSize: 64 * 1024,
  });
  await writeFile(`${FIXTURES}publisher.public.jwk.json`, JSON.stringify(publisher.publicJwk));
}
