/** Runtime-agnostic core: errors, container format v1, signatures, key sealing. Web Crypto + jose only. */
export * from "./bytes.js";
export * from "./cek-wrap.js";
export * from "./concurrency.js";
export * from "./content-key-jwe.js";
export * from "./digest.js";
export * from "./dpop-proof.js";
export * from "./errors.js";
export * from "./ids.js";
export * from "./jwk.js";
export * from "./license-token.js";
export * from "./manifest.js";
export * from "./manifest-jws.js";
export * from "./shard-aad.js";
export * from "./shard-check.js";
export * from "./shard-cipher.js";
export * from "./token-types.js";
export * from "./usage-report.js";
