import { createHash } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { exportJWK, generateKeyPair, importJWK, type JSONWebKeySet } from "jose";
import { fromBase64Url, toBase64Url } from "../../core/bytes.js";
import { ModelVaultError } from "../../core/errors.js";
import { checkEcJwk, type EcJwk, jwkThumbprint, publicJwk } from "../../core/jwk.js";
import { type KeyEncryptionKey, LocalKek } from "./kek.js";
import {
  createFileAtomic,
  parseJsonFrom,
  readKeyFile,
  removeStaleTemps,
  replaceFileAtomic,
} from "./key-file.js";

const CURRENT = "license-signing.current.jwk.json";
const NEXT = "license-signing.next.jwk.json";
const RETIRED = "license-signing.retired.json";

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

/** Loads a private JWK from the environment or its file, or creates the file (atomically, 0600). */
async function loadOrCreateJwk(
  path: string,
  env: { name: string; value: string | undefined },
  purpose: "sig" | "enc",
  what: string,
): Promise<EcJwk> {
  if (env.value)
    return checkEcJwk(parseJsonFrom(env.value, env.name, what), true, `${what} in ${env.name}`, purpose);
  const existing = await readKeyFile(path, what);
  if (existing !== undefined)
    return checkEcJwk(parseJsonFrom(existing, path, what), true, `${what} file ${path}`, purpose);
  const alg = purpose === "sig" ? "ES256" : "ECDH-ES+A256KW";
  const { privateKey } = await generateKeyPair(alg, {
    extractable: true,
    ...(purpose === "enc" ? { crv: "P-256" } : {}),
  });
  const jwk = { ...((await exportJWK(privateKey)) as EcJwk), use: purpose, alg };
  if (await createFileAtomic(path, `${JSON.stringify(jwk, null, 2)}\n`)) return jwk;
  // Another process starting on the same directory created it first: use theirs.
  return loadOrCreateJwk(path, env, purpose, what);
}

/** Loads the KEK from the environment or its file, or creates the file (atomically, 0600). */
async function loadOrCreateKek(path: string, envValue: string | undefined): Promise<Uint8Array> {
  const fromText = (text: string, source: string) => {
    const raw = fromBase64Url(text.trim());
    if (raw.length !== 32)
      throw new ModelVaultError("ERR_KEY_INVALID", `the KEK in ${source} is not 32 base64url bytes`, {
        path: source,
      });
    return raw;
  };
  if (envValue) return fromText(envValue, "MODELVAULT_KEK");
  const existing = await readKeyFile(path, "the KEK");
  if (existing !== undefined) return fromText(existing, path);
  const raw = crypto.getRandomValues(new Uint8Array(32));
  if (await createFileAtomic(path, `${toBase64Url(raw)}\n`)) return raw;
  return loadOrCreateKek(path, envValue);
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
  await removeStaleTemps(src.dir);
  const current = await signingKeyFrom(
    await loadOrCreateJwk(
      join(src.dir, CURRENT),
      { name: "MODELVAULT_LICENSE_KEY", value: env.MODELVAULT_LICENSE_KEY },
      "sig",
      "the license signing key",
    ),
  );
  let next = await signingKeyFrom(
    await loadOrCreateJwk(
      join(src.dir, NEXT),
      { name: "MODELVAULT_LICENSE_NEXT_KEY", value: env.MODELVAULT_LICENSE_NEXT_KEY },
      "sig",
      "the next license signing key",
    ),
  );
  if (next.kid === current.kid && !env.MODELVAULT_LICENSE_NEXT_KEY) {
    // A rotation cut off after promoting next to current: finish it with a fresh next key.
    const fresh = await freshSigningJwk();
    await replaceFileAtomic(join(src.dir, NEXT), `${JSON.stringify(fresh, null, 2)}\n`);
    next = await signingKeyFrom(fresh);
  }
  const retired: SigningKey[] = [];
  const retiredPath = join(src.dir, RETIRED);
  const retiredText = await readKeyFile(retiredPath, "the retired signing keys");
  const retiredJwks =
    retiredText === undefined ? [] : parseJsonFrom(retiredText, retiredPath, "the retired signing keys");
  if (!Array.isArray(retiredJwks))
    throw new ModelVaultError(
      "ERR_KEY_INVALID",
      `the retired signing keys file ${retiredPath} is not a JSON array`,
      {
        path: retiredPath,
      },
    );
  for (const jwk of retiredJwks) {
    const key = await signingKeyFrom(checkEcJwk(jwk, true, `a key in ${retiredPath}`, "sig"));
    // A rotation cut off after retiring the current key lists it twice: publish it once.
    if (key.kid !== current.kid && key.kid !== next.kid && !retired.some((k) => k.kid === key.kid))
      retired.push(key);
  }
  const regPrivate = await loadOrCreateJwk(
    join(src.dir, "registration.jwk.json"),
    { name: "MODELVAULT_REGISTRATION_KEY", value: env.MODELVAULT_REGISTRATION_KEY },
    "enc",
    "the key-registration key",
  );
  const regKid = await jwkThumbprint(regPrivate);
  const kekRaw = await loadOrCreateKek(join(src.dir, "kek.key"), env.MODELVAULT_KEK);
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

async function freshSigningJwk(): Promise<EcJwk> {
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  return { ...((await exportJWK(privateKey)) as EcJwk), use: "sig", alg: "ES256" };
}

/**
 * Rotates license signing keys: the current key retires (still published, so licenses it
 * signed verify until they expire), the pre-published next key becomes current, a new next
 * key is made. Each file is replaced atomically, in an order that loadServerKeys can finish
 * after a crash between any two steps.
 */
export async function rotateSigningKeys(src: KeySources, keys: ServerKeys): Promise<ServerKeys> {
  const currentPath = join(src.dir, CURRENT);
  const nextPath = join(src.dir, NEXT);
  const retiredPath = join(src.dir, RETIRED);
  const oldCurrent = parseJsonFrom(
    (await readKeyFile(currentPath, "the license signing key")) ?? "",
    currentPath,
    "the license signing key",
  );
  const oldNext = (await readKeyFile(nextPath, "the next license signing key")) ?? "";
  const retiredText = await readKeyFile(retiredPath, "the retired signing keys");
  const retiredJwks =
    retiredText === undefined
      ? []
      : (parseJsonFrom(retiredText, retiredPath, "the retired signing keys") as EcJwk[]);
  await replaceFileAtomic(retiredPath, JSON.stringify([...retiredJwks, oldCurrent]));
  await replaceFileAtomic(currentPath, oldNext);
  const fresh = await freshSigningJwk();
  await replaceFileAtomic(nextPath, `${JSON.stringify(fresh, null, 2)}\n`);
  return {
    ...keys,
    retired: [...keys.retired, keys.current],
    current: keys.next,
    next: await signingKeyFrom(fresh),
  };
}

/** Drops retired keys from the JWKS: licenses they signed stop verifying. */
export async function pruneRetiredKeys(src: KeySources, keys: ServerKeys): Promise<ServerKeys> {
  await replaceFileAtomic(join(src.dir, RETIRED), "[]");
  return { ...keys, retired: [] };
}
