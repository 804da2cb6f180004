/** Model owners' side (Node): key generation, packing and verification of model packages. */

export { readJsonKeyFile, writePublicFile, writeSecretFile } from "./key-files.js";
export { generateKeyPairJwk, type KeyPurpose } from "./keygen.js";
export { type OnnxModelInfo, readModelInfo } from "./onnx/read-model-info.js";
export { type PackOptions, type PackResult, packModel } from "./pack-model.js";
export type { PackTraceSummary } from "./trace/pack-trace.js";
export type { QualityReport, TraceQuality } from "./trace/quality-guard.js";
export { TRACE_DEFAULTS, type TraceFeed, type TraceOptions } from "./trace/trace-options.js";
export { type VerifyOptions, type VerifyReport, verifyPackage } from "./verify-package.js";
