/** Model owners' side (Node): key generation, packing and verification of model packages. */

export { readJsonKeyFile, writePublicFile, writeSecretFile } from "./key-files.js";
export { generateKeyPairJwk, type KeyPurpose } from "./keygen.js";
export { type OnnxModelInfo, readModelInfo } from "./onnx/read-model-info.js";
export { type PackOptions, type PackResult, packModel } from "./pack-model.js";
export { type VerifyOptions, type VerifyReport, verifyPackage } from "./verify-package.js";
