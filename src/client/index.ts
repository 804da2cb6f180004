/** ModelVault browser runtime: `loadModel()` and what it returns. */

export { ERROR_CODES, type ErrorCode, isModelVaultError, ModelVaultError } from "../core/errors.js";
export type { EcJwk, JwkInput } from "../core/jwk.js";
export type { TensorInfo } from "../core/manifest.js";
export type { LoadProgress } from "../core/progress.js";
export type {
  Backend,
  CacheReport,
  LicenseState,
  PlainTensor,
  RuntimeEvent,
} from "../core/worker-protocol.js";
export { loadModel } from "./load-model.js";
export type { LoadModelOptions } from "./options.js";
export { SecureModel, type SecureModelEventMap, type TensorLike } from "./secure-model.js";
