/**
 * Delivering a content key to one device without it ever being JavaScript bytes there
 * (docs/PROTOCOL.md, "Content-key wrap"):
 *
 *   Z   = ECDH-P256(ephemeral private, device agreement public)
 *   KEK = HKDF-SHA256(ikm = Z, salt = empty, info = "modelvault/cek-wrap/v1|<jti>|<model id>|<version>") → AES-256-KW
 *   wrapped = AES-KW(KEK, CEK)                                   (RFC 3394, 40 bytes)
 *
 * The device runs ECDH → HKDF → AES-KW → unwrapKey entirely inside Web Crypto and ends with a
 * non-extractable AES-GCM decrypt key.
 */
import { asBytes, fromBase64Url, toBase64Url, utf8 } from "./bytes.js";
import { ModelVaultError } from "./errors.js";
import type { EcJwk } from "./jwk.js";

export const CEK_WRAP_ALG = "ECDH-ES+HKDF-SHA256+A256KW";

export function cekWrapInfo(
  licenseId: string,
  modelId: string,
  modelVersion: number,
): Uint8Array<ArrayBuffer> {
  return asBytes(utf8(`modelvault/cek-wrap/v1|${licenseId}|${modelId}|${modelVersion}`));
}

const ECDH = { name: "ECDH", namedCurve: "P-256" } as const;

async function kwKey(
  privateKey: CryptoKey,
  publicKey: CryptoKey,
  info: Uint8Array<ArrayBuffer>,
  usage: "wrapKey" | "unwrapKey",
): Promise<CryptoKey> {
  const ikm = await crypto.subtle.deriveKey(
    { name: "ECDH", public: publicKey },
    privateKey,
    { name: "HKDF" },
    false,
    ["deriveKey"],
  );
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info },
    ikm,
    { name: "AES-KW", length: 256 },
    false,
    [usage],
  );
}

/**
 * Imports a device's ECDH public key, refusing a point that is not on P-256 (the invalid-curve
 * attack, RFC 8725 §3.4): Web Crypto's importKey must throw DataError for it (W3C WebCrypto,
 * EC import). ERR_REQUEST_INVALID naming `agreementKey`, so the server can answer 400 before
 * anything of the request is written.
 */
export async function importAgreementKey(jwk: EcJwk): Promise<CryptoKey> {
  try {
    return await crypto.subtle.importKey(
      "jwk",
      { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y },
      ECDH,
      false,
      [],
    );
  } catch (cause) {
    throw new ModelVaultError(
      "ERR_REQUEST_INVALID",
      'field "agreementKey": not a point on P-256',
      { path: "agreementKey" },
      { cause },
    );
  }
}

/**
 * Server side: wraps several raw AES-256 keys to a device's ECDH public key under one ephemeral
 * key and one derived AES-KW key (the content key, or a license's slot keys): 40 bytes each.
 */
export async function wrapKeysForDevice(
  raws: readonly Uint8Array[],
  deviceAgreementKey: EcJwk,
  info: Uint8Array<ArrayBuffer>,
): Promise<{ epk: EcJwk; wrapped: Uint8Array[] }> {
  const device = await importAgreementKey(deviceAgreementKey);
  const ephemeral = await crypto.subtle.generateKey(ECDH, true, ["deriveKey"]);
  const kek = await kwKey(ephemeral.privateKey, device, info, "wrapKey");
  const wrapped = await Promise.all(
    raws.map(async (raw) => {
      const key = await crypto.subtle.importKey("raw", asBytes(raw), { name: "AES-GCM" }, true, ["decrypt"]);
      return new Uint8Array(await crypto.subtle.wrapKey("raw", key, kek, { name: "AES-KW" }));
    }),
  );
  const jwk = await crypto.subtle.exportKey("jwk", ephemeral.publicKey);
  return { epk: { kty: "EC", crv: "P-256", x: jwk.x as string, y: jwk.y as string }, wrapped };
}

/** Server side: wraps raw CEK bytes to a device's ECDH public key. */
export async function wrapContentKeyForDevice(
  cekRaw: Uint8Array,
  deviceAgreementKey: EcJwk,
  info: Uint8Array<ArrayBuffer>,
): Promise<{ epk: EcJwk; wrapped: string }> {
  const { epk, wrapped } = await wrapKeysForDevice([cekRaw], deviceAgreementKey, info);
  return { epk, wrapped: toBase64Url(wrapped[0] as Uint8Array) };
}

/**
 * Device side: unwraps keys wrapped together by wrapKeysForDevice, each into a non-extractable
 * AES-256-GCM key usable only to decrypt.
 */
export async function unwrapKeysOnDevice(
  deviceAgreementPrivateKey: CryptoKey,
  epk: EcJwk,
  wrapped: readonly Uint8Array[],
  info: Uint8Array<ArrayBuffer>,
): Promise<CryptoKey[]> {
  const ephemeral = await crypto.subtle.importKey(
    "jwk",
    { kty: "EC", crv: "P-256", x: epk.x, y: epk.y },
    ECDH,
    false,
    [],
  );
  const kek = await kwKey(deviceAgreementPrivateKey, ephemeral, info, "unwrapKey");
  return Promise.all(
    wrapped.map((w) =>
      crypto.subtle.unwrapKey(
        "raw",
        asBytes(w),
        kek,
        { name: "AES-KW" },
        { name: "AES-GCM", length: 256 },
        false,
        ["decrypt"],
      ),
    ),
  );
}

/** Device side: unwraps into a non-extractable AES-256-GCM key usable only to decrypt. */
export async function unwrapContentKeyOnDevice(
  deviceAgreementPrivateKey: CryptoKey,
  epk: EcJwk,
  wrapped: string,
  info: Uint8Array<ArrayBuffer>,
): Promise<CryptoKey> {
  const [key] = await unwrapKeysOnDevice(deviceAgreementPrivateKey, epk, [fromBase64Url(wrapped)], info);
  return key as CryptoKey;
}
