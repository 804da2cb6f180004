/**
 * Every stable error code ModelVault emits, with the HTTP status it maps to and what it means.
 * docs/ERRORS.md is generated from this table (`npm run docs:errors`), so the two cannot drift.
 * Codes are part of the public API: never rename one, only add.
 */
export const ERROR_CODES = {
  // Input validation shared by packer, server and client.
  ERR_INVALID_ID: {
    status: 400,
    text: "A model id has characters outside [A-Za-z0-9._-], starts with a dot or dash, or is longer than 128.",
  },
  ERR_INVALID_VERSION: { status: 400, text: "A model version is not an integer in [1, 2^31-1]." },

  // Keys.
  ERR_KEY_INVALID: {
    status: 400,
    text: "A key file or JWK is unreadable, not JSON, or not a P-256 EC key for the purpose asked.",
  },
  ERR_KEY_NOT_PRIVATE: {
    status: 400,
    text: "A private key was needed (signing, unwrapping) but the JWK has no `d`.",
  },

  // Manifest (compact JWS).
  ERR_MANIFEST_MALFORMED: {
    status: 400,
    text: "The manifest is not a compact JWS, or its payload is not a valid v1 manifest; data.path names the field.",
  },
  ERR_MANIFEST_TOO_LARGE: {
    status: 413,
    text: "The manifest is larger than the 1 MiB limit; refused before parsing.",
  },
  ERR_MANIFEST_ALG_NOT_ALLOWED: {
    status: 401,
    text: "The manifest's `alg` is not ES256 (includes `none` and HMAC algorithms).",
  },
  ERR_MANIFEST_TYP_INVALID: {
    status: 401,
    text: "The manifest's `typ` header is missing or is not `modelvault-manifest+jws`.",
  },
  ERR_MANIFEST_HEADER_FORBIDDEN: {
    status: 401,
    text: "The manifest header carries `jku`, `x5u`, `x5c`, `jwk`, `crit` or `b64`; keys are never taken from a token.",
  },
  ERR_MANIFEST_KEY_UNKNOWN: {
    status: 401,
    text: "The manifest's `kid` matches none of the pinned publisher keys.",
  },
  ERR_MANIFEST_SIGNATURE_INVALID: {
    status: 401,
    text: "The manifest's signature does not verify under the pinned publisher key.",
  },
  ERR_MANIFEST_ROLLBACK: {
    status: 409,
    text: "The manifest's version is lower than the highest version already seen for this model.",
  },

  // Shards.
  ERR_SHARD_SIZE_MISMATCH: {
    status: 422,
    text: "A shard's ciphertext length differs from its manifest entry (truncated or extended).",
  },
  ERR_SHARD_DIGEST_MISMATCH: {
    status: 422,
    text: "A shard's SHA-256 differs from its manifest entry (tampered or swapped).",
  },
  ERR_SHARD_DECRYPT_FAILED: {
    status: 422,
    text: "AES-GCM authentication failed: wrong content key, or the shard was moved to another model, version, file or position.",
  },
  ERR_SHARD_MISSING: { status: 404, text: "A shard named in the manifest cannot be found." },

  // Content key.
  ERR_CONTENT_KEY_INVALID: {
    status: 400,
    text: "content-key.jwe does not decrypt under the given key, or does not belong to this manifest.",
  },

  // Packer.
  ERR_PACK_INPUT_NOT_FOUND: {
    status: 400,
    text: "The model file (or one of its external-data files) does not exist or cannot be read.",
  },
  ERR_PACK_NOT_ONNX: {
    status: 400,
    text: "The input is not an ONNX ModelProto (no ir_version, opset or graph outputs, or malformed protobuf).",
  },
  ERR_PACK_EXTERNAL_DATA_INVALID: {
    status: 400,
    text: "An external-data location is absolute, escapes the model's folder, or points past the file's end.",
  },
  ERR_PACK_SHARD_SIZE_OUT_OF_RANGE: {
    status: 400,
    text: "--shard-size is not an integer in [64 KiB, 256 MiB].",
  },
  ERR_PACK_OUTPUT_NOT_EMPTY: {
    status: 409,
    text: "The output directory exists and is not empty; pass --force to replace it.",
  },
  ERR_PACK_RECIPIENT_REQUIRED: {
    status: 400,
    text: "No --recipient key to seal the content key to, and no --insecure-key-out given.",
  },

  // CLI.
  ERR_CLI_USAGE: { status: 400, text: "Unknown command or option, or a required option is missing." },
} as const satisfies Record<string, { status: number; text: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;
