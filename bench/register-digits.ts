import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { manifestDigest } from "../src/core/digest.js";
import { generateKeyPairJwk } from "../src/pack/keygen.js";
import { packModel } from "../src/pack/pack-model.js";

/** Packs the digits model for a running server, registers publisher key and model; returns the manifest digest. */
export async function registerDigitsFor(url: string, admin: string, publisherToken: string): Promise<string> {
  const post = (token: string, path: string, body: unknown) =>
    fetch(`${url}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  const keys = await generateKeyPairJwk("sig");
  const jwks = (await (await fetch(`${url}/.well-known/jwks.json`)).json()) as { keys: { use: string }[] };
  const out = join(await mkdtemp(join(tmpdir(), "mv-bench-pkg-")), "digits");
  await packModel({
    modelPath: fileURLToPath(new URL("../models/digits/digits.onnx", import.meta.url)),
    id: "digits",
    version: 1,
    signingKey: keys.privateJwk,
    recipient: jwks.keys.find((k) => k.use === "enc"),
    outDir: out,
  });
  await post(admin, "/v1/admin/publisher-keys", { jwk: keys.publicJwk });
  const manifest = await readFile(join(out, "manifest.jws"), "utf8");
  await post(publisherToken, "/v1/models", {
    manifest,
    contentKey: await readFile(join(out, "content-key.jwe"), "utf8"),
  });
  return manifestDigest(manifest);
}
