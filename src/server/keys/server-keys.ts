import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { exportJWK, generateKeyPair, importJWK, type JSONWebKeySet } from "jose";
import { fromBase64Url, toBase64Url } from "../../core/bytes.js";
import { checkEcJwk, type EcJwk, jwkThumbprint, publicJwk } from "../../core/jwk.js";
import { writeSecretFile } from "../../pack/key-files.js";
import { type KeyEncryptionKey, LocalKek } from "./kek.js";

export interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicJwk: EcJwk;
}

/** All of the server's long-lived keys. */
export interface ServerKeys {
  /** Signs licenses and audit checkpoints. */
  current: SigningKey;
  /** Published ahead of use so clients cache it before rotation. */
  next: SigningKey;
  /** Older keys still published so licenses they signed stay verifiable until they expire. */
  retired: SigningKey[];
  registration: { kid: string; privateJwk: EcJwk; publicJwk: EcJwk };
  kek: KeyEncryptionKey;
}

export interface KeySources {
  /** Directory holding key files (created 0700, files 0600). */
  dir: string;
  /** Overrides: JWK JSON strings / base64url KEK from the environment. */
  env?: Record<string, string | undefined>;
}

async function loadOrCreateJwk(
  path: string,
  envValue: string | undefined,
  purpose: "sig" | "enc",
): Promise<EcJwk> {
  if (envValue) return checkEcJwk(JSON.parse(envValue), true, path, purpose);
  if (existsSync(path)) return checkEcJwk(JSON.parse(await readFile(path, "utf8")), true, path, purpose);
  const alg = purpose === "sig" ? "ES256" : "ECDH-ES+A256KW";
  const { privateKey } = await generateKeyPair(alg, {
    extractable: true,
    ...(purpose === "enc" ? { crv: "P-256" } : {}),
  });
  const jwk = { ...((await exportJWK(privateKey)) as EcJwk), use: purpose, alg };
  await writeSecretFile(path, `${JSON.stringify(jwk, null, 2)}\n`);
  return jwk;
}

export async function signingKeyFrom(jwk: EcJwk): Promise<SigningKey> {
  const kid = await jwkThumbprint(jwk);
  return {
    kid,
    privateKey: (await importJWK({ ...jwk, alg: "ES256" }, "ES256")) as CryptoKey,
    publicJwk: { ...publicJwk(jwk), kid, alg: "ES256", use: "sig" },
  };
}

/**
 * Loads the server's keys from `dir` (or MODELVAULT_* environment variables), creating what is
 * missing with private files 0600: license signing keys (current, next), the key-registration
 * ECDH key, and the KEK.
 */
export async function loadServerKeys(src: KeySources): Promise<ServerKeys> {
  const env = src.env ?? {};
  await mkdir(src.dir, { recursive: true, mode: 0o700 });
  const current = await signingKeyFrom(
    await loadOrCreateJwk(
      join(src.dir, "license-signing.current.jwk.json"),
      env.MODELVAULT_LICENSE_KEY,
      "sig",
    ),
  );
  const next = await signingKeyFrom(
    await loadOrCreateJwk(
      join(src.dir, "license-signing.next.jwk.json"),
      env.MODELVAULT_LICENSE_NEXT_KEY,
      "sig",
    ),
  );
  const retired: SigningKey[] = [];
  const retiredPath = join(src.dir, "license-signing.retired.json");
  if (existsSync(retiredPath)) {
    for (const jwk of JSON.parse(await readFile(retiredPath, "utf8")) as EcJwk[])
      retired.push(await signingKeyFrom(jwk));
  }
  const regPrivate = await loadOrCreateJwk(
    join(src.dir, "registration.jwk.json"),
    env.MODELVAULT_REGISTRATION_KEY,
    "enc",
  );
  const regKid = await jwkThumbprint(regPrivate);
  let kekRaw: Uint8Array;
  const kekPath = join(src.dir, "kek.key");
  if (env.MODELVAULT_KEK) kekRaw = fromBase64Url(env.MODELVAULT_KEK);
  else if (existsSync(kekPath)) kekRaw = fromBase64Url((await readFile(kekPath, "utf8")).trim());
  else {
    kekRaw = crypto.getRandomValues(new Uint8Array(32));
    await writeSecretFile(kekPath, `${toBase64Url(kekRaw)}\n`);
  }
  // The id names the key without revealing it: a truncated hash of a hash.
  const kekId = `local:${createHash("sha256").update(createHash("sha256").update(kekRaw).digest()).digest("hex").slice(0, 12)}`;
  const kek = await LocalKek.fromBytes(kekId, kekRaw);
  kekRaw.fill(0);
  return {
    current,
    next,
    retired,
    registration: {
      kid: regKid,
      privateJwk: regPrivate,
      publicJwk: { ...publicJwk(regPrivate), kid: regKid, alg: "ECDH-ES+A256KW", use: "enc" },
    },
    kek,
  };
}

/** The public JWKS: current, next and retired signing keys, then the registration key. */
export function publicJwks(keys: ServerKeys): JSONWebKeySet {
  return {
    keys: [
      keys.current.publicJwk,
      keys.next.publicJwk,
      ...keys.retired.map((k) => k.publicJwk),
      keys.registration.publicJwk,
    ],
  } as JSONWebKeySet;
}

/**
 * Rotates license signing keys: the current key retires (still published, so licenses it
 * signed verify until they expire), the pre-published next key becomes current, a new next
 * key is made. Files are rewritten 0600.
 */
export async function rotateSigningKeys(src: KeySources, keys: ServerKeys): Promise<ServerKeys> {
  const currentPath = join(src.dir, "license-signing.current.jwk.json");
  const nextPath = join(src.dir, "license-signing.next.jwk.json");
  const retiredPath = join(src.dir, "license-signing.retired.json");
  const oldCurrent = JSON.parse(await readFile(currentPath, "utf8")) as EcJwk;
  const oldNext = await readFile(nextPath, "utf8");
  const retiredJwks = existsSync(retiredPath)
    ? (JSON.parse(await readFile(retiredPath, "utf8")) as EcJwk[])
    : [];
  await writeSecretFile(retiredPath, JSON.stringify([...retiredJwks, oldCurrent]), true);
  await writeSecretFile(currentPath, oldNext, true);
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  const fresh = { ...((await exportJWK(privateKey)) as EcJwk), use: "sig", alg: "ES256" };
  await writeSecretFile(nextPath, `${JSON.stringify(fresh, null, 2)}\n`, true);
  return {
    ...keys,
    retired: [...keys.retired, keys.current],
    current: keys.next,
    next: await signingKeyFrom(fresh),
  };
}

/** Drops retired keys from the JWKS: licenses they signed stop verifying. */
export async function pruneRetiredKeys(src: KeySources, keys: ServerKeys): Promise<ServerKeys> {
  await writeSecretFile(join(src.dir, "license-signing.retired.json"), "[]", true);
  return { ...keys, retired: [] };
}
