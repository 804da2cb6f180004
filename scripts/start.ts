/**
 * `npm start`: development keys (created once, private files 0600) and the digits model packed
 * into .data/. Reuses what exists. The license server and demo page join this as they land.
 */
import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { writePublicFile, writeSecretFile } from "../src/pack/key-files.js";
import { generateKeyPairJwk } from "../src/pack/keygen.js";
import { packModel } from "../src/pack/pack-model.js";
import { verifyPackage } from "../src/pack/verify-package.js";

const root = fileURLToPath(new URL("../", import.meta.url));
const data = join(root, ".data");
const keys = join(data, "keys");

async function keyPair(name: string, use: "sig" | "enc") {
  const priv = join(keys, `${name}.private.jwk.json`);
  if (!existsSync(priv)) {
    const pair = await generateKeyPairJwk(use);
    await writeSecretFile(priv, JSON.stringify(pair.privateJwk, null, 2));
    await writePublicFile(
      join(keys, `${name}.public.jwk.json`),
      JSON.stringify(pair.publicJwk, null, 2),
      true,
    );
    console.log(`created ${name} key ${pair.publicJwk.kid} in ${keys}`);
  }
  return {
    privateJwk: JSON.parse(await readFile(priv, "utf8")),
    publicJwk: JSON.parse(await readFile(join(keys, `${name}.public.jwk.json`), "utf8")),
  };
}

await mkdir(keys, { recursive: true, mode: 0o700 });
const publisher = await keyPair("publisher", "sig");
const registration = await keyPair("registration", "enc");
const out = join(data, "packages", "digits-v1");
const ok = await verifyPackage(out, { publisherKeys: [publisher.publicJwk] }).then(
  () => true,
  () => false,
);
if (!ok) {
  const r = await packModel({
    modelPath: join(root, "models/digits/digits.onnx"),
    id: "digits",
    version: 1,
    signingKey: publisher.privateJwk,
    recipient: registration.publicJwk,
    outDir: out,
    force: true,
  });
  console.log(`packed digits v1 (${r.manifest.size} bytes) into ${out}`);
} else {
  console.log(`reusing the packed digits v1 in ${out}`);
}
console.log(
  "verified: manifest signature and every shard digest. Next: the license server and demo page (issues #3-#5).",
);
