/**
 * Models: the embedded shapes model, Stable Diffusion 1.5-class ONNX folders in the Hugging Face
 * layout (local or downloaded into a cache), the CLIP tokenizer, the denoiser wrapper that adds
 * attention taps to any ONNX UNet, and the model root every loader resolves files through
 * (`modelRoot`, `readOnnx`: nothing outside the root is ever read) with the checked-model edge.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { models } from "@attnkit/attnkit";
 * const m = await models.loadShapesModel();
 * assert(m.info.latentShape.join() === "4,16,16");
 * await m.release();
 * ```
 *
 * @module
 */
export type {
  AttentionBias,
  DenoiseOptions,
  DenoiseResult,
  DiffusionModel,
  ModelInfo,
} from "../runtime/model.ts";
export {
  type Denoiser,
  type DenoiserIo,
  layerSize,
  loadDenoiser,
  type LoadDenoiserOptions,
  type TapPart,
} from "../runtime/denoiser.ts";
export {
  type DenoiserInputs,
  loadShapesModel,
  type LoadShapesOptions,
  SHAPES_DIT_WEIGHTS,
  SHAPES_WEIGHTS,
  type ShapesConfig,
} from "../models/shapes.ts";
export {
  loadSd15,
  type LoadSd15Options,
  releaseSd15,
  resolveSd15Files,
  type Sd15Config,
  type Sd15Manifest,
  type Sd15Model,
} from "../models/sd15.ts";
export type { SchedulerConfig, SessionFactory } from "../models/sd15.ts";
export type { OnnxModelFiles, Sd15Files, TensorSignature } from "../models/hf_layout.ts";
export { loadSd15Model, type Sd15ModelOptions } from "../models/sd15_model.ts";
export { fetchToCache, type FetchToCacheOptions, HttpStatusError } from "../models/download.ts";
export type { ProgressCallback } from "../models/download.ts";
export {
  type ClipTokenizer,
  type ClipTokenizerOptions,
  createClipTokenizer,
  loadClipTokenizer,
} from "../models/clip_tokenizer.ts";
export type { ClipTokenizerFiles, Tokenizer } from "../models/clip_tokenizer.ts";
export {
  confineEntry,
  entryDir,
  type ModelRoot,
  modelRoot,
  type OnnxFile,
  readOnnx,
} from "../models/root.ts";
export { checkedModel, type ModelFiles } from "../runtime/checked_model.ts";
export { isLoopbackUrl, isPrivateUrl } from "../models/cache.ts";
