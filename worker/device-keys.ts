import { type EcJwk, jwkThumbprint } from "../src/core/jwk.js";
import type { DeviceRecord, Storage } from "./storage.js";

async function publicJwk(key: CryptoKey): Promise<EcJwk> {
  const j = await crypto.subtle.exportKey("jwk", key);
  return { kty: "EC", crv: "P-256", x: j.x as string, y: j.y as string };
}

/**
 * Loads this browser's device keys for a license server, or makes them: ECDSA P-256 (DPoP and
 * usage signatures) and ECDH P-256 (receiving content keys), both non-extractable. Only the
 * public halves can be exported; the private keys are usable, never readable.
 */
export async function deviceKeys(
  origin: string,
  storage: Storage | undefined,
  memory: Map<string, DeviceRecord>,
): Promise<DeviceRecord> {
  const stored = (await storage?.db.get("devices", origin).catch(() => undefined)) ?? memory.get(origin);
  if (stored) return stored;
  const sign = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, [
    "sign",
    "verify",
  ]);
  const agree = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, false, ["deriveKey"]);
  const signPublic = await publicJwk(sign.publicKey);
  const agreePublic = await publicJwk(agree.publicKey);
  const record: DeviceRecord = {
    origin,
    signPrivate: sign.privateKey,
    signPublic,
    jkt: await jwkThumbprint(signPublic),
    agreePrivate: agree.privateKey,
    agreePublic,
    akt: await jwkThumbprint(agreePublic),
    createdAt: Date.now(),
  };
  try {
    if (!storage) throw new Error("no storage");
    const tx = storage.db.transaction("devices", "readwrite", { durability: "strict" });
    await tx.store.put(record);
    await tx.done;
  } catch {
    memory.set(origin, record);
  }
  return record;
}
