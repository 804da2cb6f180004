/** ModelVault browser runtime: `loadModel()` and what it returns. */

export type { PlainTensor } from "../../worker/ort-session.js";
export type { LicenseState, RuntimeEvent } from "../../worker/runtime.js";
export { ERROR_CODES, type ErrorCode, isModelVaultError, ModelVaultError } from "../core/errors.js";
export type { EcJwk } from "../core/jwk.js";
export type { TensorInfo } from "../core/manifest.js";
export type { LoadProgress } from "../core/progress.js";
export { loadModel } from "./load-model.js";
export type { LoadModelOptions } from "./options.js";
export { SecureModel, type TensorLike } from "./secure-model.js";
