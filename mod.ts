/**
 * attnkit: training-free attention control for text-to-image diffusion models.
 *
 * Tap the self- and cross-attention of any ONNX denoiser, turn the taps into ISAC's accumulated
 * maps, and select or optimise latents with ISAC (instance-to-semantic attention control) and the
 * other methods, as small composable functions.
 *
 * @example
 * ```ts
 * import { decodeLatents, loadShapesModel, selectLatent } from "@attnkit/attnkit";
 *
 * const model = await loadShapesModel();
 * const sel = await selectLatent(model, "a photo of three yellow hearts", { seed: 0, candidates: 4 });
 * const images = await decodeLatents(model, sel.latents);
 * console.log(sel.best, sel.scores, images.shape);
 * ```
 *
 * @module
 */

// Core data types and errors.
export type { Tensor } from "./lib/tensor.ts";
export { expectFinite, expectShape, sizeOf, tensor } from "./lib/tensor.ts";
export { AttnkitError, check } from "./lib/errors.ts";
export { gaussian, mulberry32, type Rng } from "./lib/random.ts";

// ISAC's attention maths (Eq. 1–13) and the λ schedules.
export * from "./lib/attention/mod.ts";
export * from "./lib/isac/mod.ts";
export {
  type Gate,
  type MifoDecayOptions,
  type Schedule,
  schedule,
  type ScheduleCatalogue,
} from "./lib/schedule.ts";

// Samplers and prompts.
export * from "./lib/samplers/mod.ts";
export * from "./lib/prompt/mod.ts";

// ONNX: plain-data models, codec, graph helpers, hooks, autodiff, onnxruntime.
export type * from "./lib/onnx/types.ts";
export { AttributeType, DataType } from "./lib/onnx/types.ts";
export { decodeModel, encodeModel } from "./lib/onnx/proto.ts";
export { createSession, type CreateSessionOptions, ort, type Session } from "./lib/onnx/ort.ts";
export type { ExecutionProvider } from "./lib/onnx/ort.ts";
export { findAttention, scanAttention } from "./lib/hooks/find.ts";
export type {
  AttentionCore,
  AttentionForm,
  AttentionLayout,
  FindAttentionOptions,
  ScaleFactor,
  SkippedAttention,
} from "./lib/hooks/find.ts";
export { resolveScale, tapAttention, type TapInfo, type TapOptions } from "./lib/hooks/tap.ts";
export { biasAttention } from "./lib/hooks/bias.ts";
export * from "./lib/onnx/autodiff/mod.ts";

// Runtime: models, the sampling loop, controls.
export type { DenoiseResult, DiffusionModel, ModelInfo } from "./lib/runtime/model.ts";
export type { AttentionBias, DenoiseOptions } from "./lib/runtime/model.ts";
export { type Denoiser, type DenoiserIo, layerSize, loadDenoiser } from "./lib/runtime/denoiser.ts";
export {
  type AdjustEvent,
  decodeLatents,
  defaultSampler,
  generate,
  initialLatents,
  sampleLatents,
  type SampleOptions,
  type StepEvent,
} from "./lib/runtime/sample.ts";
export { type Progress, stepProgress } from "./lib/runtime/progress.ts";
export { isacSpecFor, type PromptSpec } from "./lib/control/isac_spec.ts";
export {
  type Selection,
  selectLatent,
  type SelectOptions,
  type Snapshot,
} from "./lib/control/select_latent.ts";

// Models: the embedded shapes model, Stable Diffusion 1.5-class loading, caching, CLIP BPE.
export {
  loadShapesModel,
  type LoadShapesOptions,
  SHAPES_WEIGHTS,
  type ShapesConfig,
} from "./lib/models/shapes.ts";
export {
  loadSd15,
  type LoadSd15Options,
  releaseSd15,
  resolveSd15Files,
  type Sd15Config,
  type Sd15Manifest,
  type Sd15Model,
} from "./lib/models/sd15.ts";
export type { SchedulerConfig, SessionFactory } from "./lib/models/sd15.ts";
export type { OnnxModelFiles, Sd15Files, TensorSignature } from "./lib/models/hf_layout.ts";
export { loadSd15Model, type Sd15ModelOptions } from "./lib/models/sd15_model.ts";
export { fetchToCache, type FetchToCacheOptions, HttpStatusError } from "./lib/models/download.ts";
export type { ProgressCallback } from "./lib/models/download.ts";
export {
  type ClipTokenizer,
  type ClipTokenizerOptions,
  createClipTokenizer,
  loadClipTokenizer,
} from "./lib/models/clip_tokenizer.ts";
export type { ClipTokenizerFiles, Tokenizer } from "./lib/models/clip_tokenizer.ts";

// The shapes world (renderer, captions, vocabulary) and pictures.
export * from "./lib/shapes/world.ts";
export { render, type Rendered } from "./lib/shapes/render.ts";
export {
  type Background,
  type Group,
  type Scene,
  sceneFor,
  type ShapeObject,
} from "./lib/shapes/scene.ts";
export { captionOf } from "./lib/shapes/caption.ts";
export { encodePng } from "./lib/png.ts";
export { clusterImage, heatmap, imageBytes } from "./lib/viz/colour.ts";

// WGSL kernels (a real GPU) with the CPU path beside them; the backend is picked once.
export * from "./kernels/mod.ts";

// Losses on attention maps (each `(maps) => { value, grad }`) and the controls built on them.
export * from "./lib/losses/mod.ts";

// Layout grounding: DEIG and InstanceAssemble primitives.
export * from "./lib/grounding/mod.ts";
export {
  expectFiniteLoss,
  latentGrad,
  type LatentGradResult,
  NonFiniteLossError,
} from "./lib/control/latent_grad.ts";
export {
  type AdjustHook,
  chainAdjust,
  isacOptimiser,
  type IsacOptimiserOptions,
  type LatentOptimiser,
  type Optimised,
  optimiseLatent,
  type OptimiseOptions,
  type OptimiseStepLog,
} from "./lib/control/optimise_latent.ts";
export {
  adamInit,
  type AdamOptions,
  type AdamState,
  adamStep,
  iterRef,
  type IterRefHook,
  type IterRefOptions,
} from "./lib/control/iter_ref.ts";
export {
  type AttendExcite,
  attendExcite,
  type AttendExciteRunOptions,
} from "./lib/control/attend_excite.ts";
export {
  type GsnRefiner,
  gsnRefiner,
  type GsnRefinerOptions,
  selectStep,
  type SelectStepOptions,
  type StepScore,
  type StepSelection,
} from "./lib/control/select_step.ts";
export {
  type MifoOptions,
  type MifoResult,
  type MifoSubject,
  mifoSynthesis,
  refineMasks,
} from "./lib/control/mifo.ts";
export { boundedBias, type BoundedBiasOptions, steeredModel } from "./lib/control/steer.ts";

// The shapes world's detector and benchmark scoring.
export { detect, type DetectOptions, type Instance } from "./lib/shapes/detect.ts";
export { scoreGroups, scoreMultiClass, scoreMultiInstance } from "./lib/shapes/score.ts";
export { benchmarkPrompts, parsePromptFile } from "./lib/shapes/benchmark_prompts.ts";

// Types the public functions above mention.
export type {
  IsacLossFn,
  StepAt,
  StepFilter,
  StepMapsLoss,
} from "./lib/control/optimise_latent.ts";
export type { IterRefItemLog, IterRefStepLog } from "./lib/control/iter_ref.ts";
export type { AttendExciteStepLog } from "./lib/control/attend_excite.ts";
export type { GuidanceLog } from "./lib/control/select_step.ts";
export type { MifoIteration, MifoStepLog, RefineOptions, RefineStats } from "./lib/control/mifo.ts";
export type { LayerGeometry, MasksAt, SteerCall } from "./lib/control/steer.ts";
export type { ShapeScore } from "./lib/shapes/detect_shape.ts";
export type { GroupScore, GroupsScore, Scored, ScoreOptions } from "./lib/shapes/score.ts";
export type {
  BenchmarkPrompt,
  BenchmarkPromptOptions,
  BenchmarkSetting,
  FilePrompt,
} from "./lib/shapes/benchmark_prompts.ts";
export { seedCentres } from "./lib/isac/kmeans.ts";

// --- issue 11: evidence (objective variants, statistics, detector verdicts) ---
export { DEFAULT_VARIANT, resolveVariant } from "./lib/isac/loss.ts";
export type { IsacBinding, IsacVariant } from "./lib/isac/loss.ts";
export { ISAC_VARIANTS, isacVariant } from "./lib/isac/variant.ts";
export { bootstrapCi, mean, meanCi, quantileSorted } from "./lib/stats/bootstrap.ts";
export type { BootstrapOptions, Interval } from "./lib/stats/bootstrap.ts";
export { rocAuc, withinGroupAuc } from "./lib/stats/auc.ts";
export { normalQuantile, pairedSampleSize, sampleSd } from "./lib/stats/power.ts";
export { verdictOf } from "./lib/shapes/verdict.ts";
export type { Verdict } from "./lib/shapes/verdict.ts";

// --- issue 11: baselines ---
// InitNO and SynGen (the ISAC paper's baselines) beside Attend-and-Excite.
export {
  cleanMask,
  INITNO_JOINT_WEIGHTS,
  INITNO_NOISE_WEIGHTS,
  type InitNoKl,
  initNoKl,
  initNoLoss,
  type InitNoLossOptions,
  type InitNoResult,
  type InitNoTerms,
  type InitNoWeights,
  otsuThreshold,
} from "./lib/losses/initno.ts";
export {
  symmetricKl,
  synGenLoss,
  type SynGenOptions,
  type SynGenResult,
  type SynGenSubtree,
} from "./lib/losses/syngen.ts";
export {
  type InitNo,
  initNo,
  type InitNoEvent,
  type InitNoIterLog,
  type InitNoMapOptions,
  initNoNoise,
  type InitNoNoiseOptions,
  type InitNoNoiseResult,
  initNoOptimise,
  type InitNoOptions,
  type InitNoRoundLog,
  type InitNoStepLog,
} from "./lib/control/initno.ts";
export {
  promptColumns,
  type SynGen,
  synGen,
  type SynGenRunOptions,
  type SynGenStepLog,
  synGenSubtrees,
} from "./lib/control/syngen.ts";
