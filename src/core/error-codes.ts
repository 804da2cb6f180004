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
    text: "The manifest header carries `jku`, `x5u`, `x5c`, `jwk`, `crit`, `b64` or `zip`; keys are never taken from a token.",
  },
  ERR_MANIFEST_KEY_UNKNOWN: {
    status: 401,
    text: "The manifest's `kid` matches none of the pinned publisher keys.",
  },
  ERR_MANIFEST_SIGNATURE_INVALID: {
    status: 401,
    text: "The manifest's signature does not verify under the pinned publisher key.",
  },
  ERR_MANIFEST_EXPIRED: {
    status: 410,
    text: "The manifest's signed validity (`expires`) has passed: the publisher must sign a newer version. Refused by the server (no license) and by the worker (also offline, on its trusted clock).",
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

  // HTTP requests (license server).
  ERR_REQUEST_INVALID: {
    status: 400,
    text: "The request body or query failed validation: malformed JSON, wrong types, unknown fields, unsafe numbers, invalid UTF-8; data.path names the field.",
  },
  ERR_REQUEST_TOO_LARGE: {
    status: 413,
    text: "The request body is larger than the server's limit; refused before parsing.",
  },
  ERR_HEADERS_TOO_LARGE: {
    status: 431,
    text: "A request header (Authorization, DPoP) is longer than its limit; refused before any crypto.",
  },
  ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, text: "The request body is not `application/json`." },
  ERR_NOT_FOUND: { status: 404, text: "No such route or resource." },
  ERR_METHOD_NOT_ALLOWED: { status: 405, text: "The route exists but not for this HTTP method." },
  ERR_CONFLICT: { status: 409, text: "The resource already exists or changed concurrently." },
  ERR_INTERNAL: { status: 500, text: "An unexpected server error; details are in the server log only." },
  ERR_UNAVAILABLE: {
    status: 503,
    text: "The server is shutting down or its database is busy; retry after Retry-After.",
  },

  // Authentication and authorization.
  ERR_AUTH_REQUIRED: {
    status: 401,
    text: "No credential: send `Authorization: Bearer <API key or OIDC ID token>`.",
  },
  ERR_AUTH_INVALID: {
    status: 401,
    text: "The API key or ID token is unknown, revoked, expired, or does not verify.",
  },
  ERR_FORBIDDEN: {
    status: 403,
    text: "The caller's roles do not grant the permission this route needs (data.permission).",
  },
  ERR_RATE_LIMITED: {
    status: 429,
    text: "Too many requests (or failed authentications); retry after Retry-After seconds.",
  },
  ERR_ROLE_CONFLICT: {
    status: 409,
    text: "The role change would break separation of duties (publisher+licensor, admin with publisher, licensor or auditor, or an admin changing their own roles).",
  },

  // DPoP (RFC 9449).
  ERR_DPOP_INVALID: {
    status: 401,
    text: "The DPoP proof is missing, malformed, or fails a check of RFC 9449 §4.3 (typ, alg, jwk, htm, htu, iat, signature); data.reason says which.",
  },
  ERR_DPOP_NONCE_REQUIRED: {
    status: 400,
    text: "The DPoP proof lacks the server nonce or carries a stale one; retry with the DPoP-Nonce response header.",
  },
  ERR_DPOP_REPLAY: { status: 401, text: "This DPoP proof's jti was already used by this device key." },

  // Licensing policy.
  ERR_MODEL_NOT_FOUND: { status: 404, text: "No registered model with this id and version." },
  ERR_MANIFEST_DIGEST_MISMATCH: {
    status: 409,
    text: "The manifest digest in the request is not the registered manifest's.",
  },
  ERR_ENTITLEMENT_NOT_FOUND: { status: 403, text: "The caller has no entitlement for this model version." },
  ERR_ENTITLEMENT_EXPIRED: { status: 403, text: "The entitlement has passed its expiry." },
  ERR_ENTITLEMENT_REVOKED: { status: 403, text: "The entitlement was revoked." },
  ERR_DEVICE_LIMIT: {
    status: 403,
    text: "The entitlement's device limit is reached; this device is not among its devices.",
  },
  ERR_DEVICE_REVOKED: { status: 403, text: "This device was revoked." },
  ERR_QUOTA_EXHAUSTED: { status: 403, text: "The entitlement's inference quota for this period is spent." },
  ERR_USAGE_OVERDUE: {
    status: 403,
    text: "Usage reports for this device's previous license are overdue; send them, then renew.",
  },

  // License tokens (client side, and the server when they are presented back).
  ERR_LICENSE_INVALID: {
    status: 401,
    text: "The license token is malformed, has the wrong alg/typ/kid/iss/aud, lacks a required claim, or its signature fails.",
  },
  ERR_LICENSE_EXPIRED: {
    status: 401,
    text: "The license has expired (and any offline allowance has ended).",
  },
  ERR_LICENSE_REVOKED: { status: 403, text: "The license (or its entitlement or device) was revoked." },
  ERR_LICENSE_WRONG_DEVICE: { status: 401, text: "The license is bound (cnf.jkt) to another device key." },
  ERR_LICENSE_WRONG_MODEL: { status: 401, text: "The license is for another model, version or manifest." },
  ERR_CLOCK_ROLLBACK: {
    status: 401,
    text: "The local clock is behind the highest trusted time seen; refusing to extend a license with it.",
  },

  // Browser runtime.
  ERR_INSECURE_URL: {
    status: 400,
    text: "A license server or model URL is plain http: on a host other than localhost; use https.",
  },
  ERR_NETWORK: {
    status: 503,
    text: "A download or license request failed after its retries (offline, server down, connection cut).",
  },
  ERR_ABORTED: { status: 499, text: "The load was cancelled through its AbortSignal." },
  ERR_STORAGE_UNAVAILABLE: {
    status: 507,
    text: "IndexedDB is unavailable or full; with cache on, the runtime fell back to no cache where it could.",
  },
  ERR_BACKEND_UNAVAILABLE: {
    status: 501,
    text: "The requested backend (e.g. webgpu) is not available in this browser.",
  },
  ERR_INPUT_INVALID: {
    status: 400,
    text: "run() inputs do not match the manifest signature (names, element types, rank, dims) or contain NaN/Infinity; data.input names it.",
  },
  ERR_DISPOSED: { status: 410, text: "The model was disposed; load it again." },
  ERR_WORKER_CRASHED: {
    status: 500,
    text: "The model's worker died (out of memory, killed, crashed): every pending and later call fails with this code; loadModel() again.",
  },
  ERR_SESSION_FAILED: { status: 500, text: "onnxruntime-web could not create the session or run the model." },
  ERR_CACHE_SKIPPED: {
    status: 507,
    text: "A warning, not a failure: the model's ciphertext does not fit the origin's storage quota even after evicting other models (or the browser refused a write), so this load runs uncached and leaves nothing of it in the cache.",
  },
  ERR_CACHE_EVICTED: {
    status: 507,
    text: "A warning: another cached model, the least recently used, was removed from the cache to make room for this one (never the model being loaded).",
  },
  ERR_RUNTIME_ASSET_MISSING: {
    status: 404,
    text: "An onnxruntime-web runtime file is not served at `wasmPaths` (missing, or answered with an HTML page); data.url names it. Checked before a license is requested.",
  },

  // Usage reports.
  ERR_USAGE_INVALID: {
    status: 400,
    text: "A usage report is malformed or its signature does not verify under the reporting device's key.",
  },
  ERR_USAGE_WRONG_DEVICE: {
    status: 403,
    text: "A usage report names a license that belongs to another device.",
  },
  ERR_USAGE_GAP: {
    status: 409,
    text: "A usage report skips sequence numbers; send the missing ones first (recorded as an anomaly).",
  },
  ERR_USAGE_FORK: {
    status: 409,
    text: "A usage report conflicts with an acknowledged one at the same sequence number (recorded as an anomaly).",
  },

  // Audit log.
  ERR_AUDIT_CHAIN_BROKEN: {
    status: 500,
    text: "An audit entry's hash does not match its contents or its predecessor; data.seq is the first bad entry.",
  },
  ERR_AUDIT_CHECKPOINT_INVALID: {
    status: 500,
    text: "An audit checkpoint's signature fails, or the log no longer matches it (truncated or rewritten).",
  },

  // CLI.
  ERR_CLI_USAGE: { status: 400, text: "Unknown command or option, or a required option is missing." },
  ERR_CLI_SERVER_UNREACHABLE: {
    status: 503,
    text: "The CLI could not reach the license server; data.url names the URL it tried (set MODELVAULT_SERVER).",
  },

  // Installation.
  ERR_DEPENDENCY_MISSING: {
    status: 500,
    text: "An optional package this feature needs is not installed (a database driver for the server, vite for the plugin); data.package names it.",
  },

  // Storage faults (license server).
  ERR_DB_UNAVAILABLE: {
    status: 503,
    text: "The database cannot be reached (restarting, connection lost or refused); retry after Retry-After. A request cut off while committing may have been applied: usage reports are idempotent, and a repeated license request settles the first.",
  },
  ERR_STORAGE_FULL: {
    status: 507,
    text: "The database's disk is full, so nothing was written; reads keep working; retry after Retry-After.",
  },

  // Ownership, identity providers, pinned expectations, output policy.
  ERR_PUBLISHER_KEY_NOT_OWNED: {
    status: 403,
    text: "The manifest is signed by a publisher key that does not belong to the registering principal (data.kid).",
  },
  ERR_PUBLISHER_KEY_REVOKED: {
    status: 403,
    text: "The manifest is signed by a publisher key that was revoked (data.kid): the server registers and licenses nothing it signed. Pin the publisher's new key and load a manifest signed by it (README, Key rotation).",
  },
  ERR_MODEL_NOT_OWNED: {
    status: 403,
    text: "The model id belongs to another publisher (its first registrant, or whom an admin assigned it to).",
  },
  ERR_MODEL_RETIRED: {
    status: 410,
    text: "This model version was retired by an admin; no licenses are issued for it.",
  },
  ERR_KEY_HOLDER_ACTIVE: {
    status: 409,
    text: "The principal already holds an active API key; an admin may only issue its first (or, after revocation, a new) key. Principals rotate their own keys.",
  },
  ERR_IDP_UNAVAILABLE: {
    status: 503,
    text: "The OIDC identity provider's keys could not be fetched (down, slow, or answering errors); retry after Retry-After. Not a refusal of the credential.",
  },
  ERR_MODEL_MISMATCH: {
    status: 409,
    text: "The manifest is not the model the app expects (`expect`: model id, or a version below minVersion); a mirror may be serving another model.",
  },
  ERR_PACK_EXPIRES_INVALID: {
    status: 400,
    text: "The manifest's validity (`expires`, or `--expires-in`) must be a time in the future.",
  },
  ERR_PACK_OUTPUT_POLICY_INVALID: {
    status: 400,
    text: "--top-k is not an integer >= 1, or --decimals is not an integer in [0, 15].",
  },
  ERR_OUTPUT_POLICY_UNSUPPORTED: {
    status: 422,
    text: "The manifest's outputPolicy cannot be applied to an output of this element type (data.output); the model is refused rather than run unhardened.",
  },
  ERR_PACK_MONITORING_INVALID: {
    status: 400,
    text: "The monitoring policy (`pack --monitor FILE`) is malformed or does not fit the model's outputs; data.path names the field.",
  },
  ERR_CONSOLE_UNAVAILABLE: {
    status: 404,
    text: "The operations console is not served here: this server was started with `--console off`, or from sources without `npm run build`.",
  },
  ERR_PACK_TRACE_INVALID: {
    status: 400,
    text: "The tracing options do not fit: --trace-slots outside [1, 512], --trace-key-out or --trace-strength missing or invalid, or the model has too few float weights for the slots asked (data.path names the option).",
  },
  ERR_PACK_TRACE_TOLERANCE: {
    status: 400,
    text: "The marks would change the model's outputs by more than --trace-tolerance on the sample inputs (data.maxDiff); use a smaller --trace-strength or --trace-coverage.",
  },
  ERR_TRACE_KEY_INVALID: {
    status: 400,
    text: "A traceable package was registered without its trace-key.jwe, with one that does not open under this server's key or belongs to another package, or a trace key came with an untraceable manifest.",
  },
  ERR_MODEL_NOT_TRACEABLE: {
    status: 409,
    text: "This model version was packed without --trace-slots: it has no marks to trace.",
  },
  ERR_TRACE_READS_INVALID: {
    status: 400,
    text: "A trace request's reads are not one finite number per slot of the model (data.path names the field).",
  },
  ERR_TRACE_LEAK_UNREADABLE: {
    status: 400,
    text: "The leaked model holds none of the marked tensors (by name, or by size and content), or is not an ONNX model; nothing can be traced from it.",
  },
} as const satisfies Record<string, { status: number; text: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;
