/**
 * attnkit: training-free attention control for text-to-image diffusion models.
 *
 * Tap the self- and cross-attention of any ONNX denoiser, turn the taps into ISAC's accumulated
 * maps, and select or optimise latents with ISAC (instance-to-semantic attention control) and the
 * other methods (Attend-and-Excite, step selection, MIFO), as small composable functions.
 *
 * A run is a recipe (plain data) transformed by data-last controls, written with fp-ts `pipe`:
 *
 * @example
 * ```ts
 * import { pipe } from "npm:fp-ts@2.16.11/lib/function.js";
 * import { guide, loadShapesModel, lossOf, recipe, rules, run, select } from "./mod.ts";
 *
 * const model = await loadShapesModel();
 * const out = await pipe(
 *   recipe(model, "a photo of a red circle and a blue square", { steps: 4, guidance: 5 }),
 *   select({ score: lossOf.isac(), candidates: 2 }),          // ISAC Algorithm 2
 *   guide({ loss: lossOf.isac(), rule: rules.gradient(10) }), // ISAC Algorithm 1
 *   run({ seed: 0 }),
 * );
 * console.log(out.selection?.scores, out.images.shape); // [2 scores], [1, 3, 64, 64]
 * await model.release();
 * ```
 *
 * Namespaces: `controls`, `lossOf`, `samplers`, `schedule`, `hooks`, `maps`, `models`,
 * `prompts`, `grounding`, `viz`, `shapes`, `onnx`.
 *
 * @module
 */

// Composition and a first script's functions (compose with fp-ts `pipe`/`flow`).
export { guide, recipe, rules, run, select, withSampler } from "./lib/compose/mod.ts";
export type {
  GuideOptions,
  Outcome,
  Recipe,
  RecipeOptions,
  RunOptions,
} from "./lib/compose/mod.ts";
export type { RunLoss, SelectPassOptions, StepRule } from "./lib/compose/mod.ts";
export { lossOf } from "./lib/compose/losses.ts";
export { type Schedule, schedule, type ScheduleCatalogue } from "./lib/schedule.ts";
export { loadShapesModel, type LoadShapesOptions } from "./lib/models/shapes.ts";
export { loadSd15Model, type Sd15ModelOptions } from "./lib/models/sd15_model.ts";
export type { DiffusionModel, ModelInfo } from "./lib/runtime/model.ts";
export {
  decodeLatents,
  defaultSampler,
  generate,
  initialLatents,
  sampleLatents,
  type SampleOptions,
} from "./lib/runtime/sample.ts";
export { optimiseLatent, type OptimiseOptions } from "./lib/control/optimise_latent.ts";
export { selectLatent } from "./lib/control/select_latent.ts";
export { selectStep } from "./lib/control/select_step.ts";
export { mifoSynthesis } from "./lib/control/mifo.ts";
export { isacSpecFor, type PromptSpec } from "./lib/control/isac_spec.ts";
export { parsePrompt } from "./lib/prompt/parse.ts";
export { savePng } from "./lib/viz/save.ts";
export { type Tensor, tensor } from "./lib/tensor.ts";
export { AttnkitError } from "./lib/errors.ts";

// Names the documented reproductions and power users reach for directly (also in namespaces).
export { fetchToCache } from "./lib/models/download.ts";
export { createSession, ort } from "./lib/onnx/ort.ts";
export { decodeModel, encodeModel } from "./lib/onnx/proto.ts";
export { AttributeType, DataType } from "./lib/onnx/types.ts";
export type { Model, NodeProto } from "./lib/onnx/types.ts";
export { findAttention, scanAttention } from "./lib/hooks/find.ts";
export { tapAttention } from "./lib/hooks/tap.ts";
export { kmeans } from "./lib/isac/kmeans.ts";
export { mpo } from "./lib/isac/mpo.ts";
export { ddimStep } from "./lib/samplers/ddim.ts";
export { samplerFromConfig } from "./lib/samplers/from_config.ts";

// Types the public functions above mention (their namespaces hold the rest).
export type { ModelRootOptions } from "./lib/models/root.ts";
export type { Backend, BackendPreference, KernelOptions } from "./kernels/backend.ts";
export type {
  AttentionMaps,
  AttentionMapsGrad,
  AttentionTap,
  TapGrad,
} from "./lib/attention/types.ts";
export type { BoxOptions, IsacLossOptions, LossCatalogue } from "./lib/compose/losses.ts";
export type {
  ControlFactory,
  ControlLogEntry,
  RunContext,
  RunControl,
  SamplerChoice,
  SelectionPass,
} from "./lib/compose/recipe.ts";
export type {
  AdamShiftOptions,
  Evaluate,
  Evaluation,
  RefineRuleOptions,
  RuleCatalogue,
} from "./lib/compose/rules.ts";
export type { SelectionOutcome } from "./lib/compose/run.ts";
export type { AdamOptions } from "./lib/control/iter_ref.ts";
export type { MapsLoss, MapsLossResult, NonFiniteLossError } from "./lib/control/latent_grad.ts";
export type {
  MifoIteration,
  MifoOptions,
  MifoResult,
  MifoStepLog,
  MifoSubject,
} from "./lib/control/mifo.ts";
export type {
  AdjustHook,
  IsacLossFn,
  IsacOptimiserOptions,
  Optimised,
  OptimiseStepLog,
  StepAt,
  StepFilter,
  StepMapsLoss,
} from "./lib/control/optimise_latent.ts";
export type { Selection, SelectOptions, Snapshot } from "./lib/control/select_latent.ts";
export type {
  GsnRefinerOptions,
  SelectStepOptions,
  StepScore,
  StepSelection,
} from "./lib/control/select_step.ts";
export type {
  AttentionCore,
  AttentionForm,
  AttentionLayout,
  FindAttentionOptions,
  ScaleFactor,
  SkippedAttention,
} from "./lib/hooks/find.ts";
export type { TapInfo, TapOptions } from "./lib/hooks/tap.ts";
export type { KMeansOptions, KMeansResult } from "./lib/isac/kmeans.ts";
export type { IsacResult, IsacSpec, IsacWeights } from "./lib/isac/loss.ts";
export type { SimilarityMetric } from "./lib/isac/similarity.ts";
export type { AttendExciteOptions } from "./lib/losses/attend_excite.ts";
export type { Box, BoxLossOptions } from "./lib/losses/box.ts";
export type { GsnOptions } from "./lib/losses/gsn.ts";
export type { IouForm, IouOptions } from "./lib/losses/iou.ts";
export type { TapSelection } from "./lib/losses/resolution.ts";
export type { TokenMapOptions } from "./lib/losses/token_maps.ts";
export type { TokenColumns } from "./lib/losses/types.ts";
export type { ClipTokenizerOptions } from "./lib/models/clip_tokenizer.ts";
export type { FetchToCacheOptions, ProgressCallback } from "./lib/models/download.ts";
export type { LoadSd15Options, Sd15Manifest, SessionFactory } from "./lib/models/sd15.ts";
export type { CreateSessionOptions, ExecutionProvider, Session } from "./lib/onnx/ort.ts";
export type {
  AttributeProto,
  Dim,
  GraphProto,
  OperatorSetId,
  TensorProto,
  TypeProto,
  ValueInfoProto,
} from "./lib/onnx/types.ts";
export type {
  CharSpan,
  ParseOptions,
  PromptTarget,
  PromptTokenizer,
  TargetSpec,
  Tokenization,
  TokenPiece,
  TokenTarget,
  TokenWord,
} from "./lib/prompt/types.ts";
export type { AttentionBias, DenoiseOptions, DenoiseResult } from "./lib/runtime/model.ts";
export type { AdjustEvent, StepEvent } from "./lib/runtime/sample.ts";
export type { DdimCoefficients } from "./lib/samplers/ddim.ts";
export type { Prediction } from "./lib/samplers/prediction.ts";
export type { Sampler } from "./lib/samplers/sampler.ts";
export type { Gate, MifoDecayOptions } from "./lib/schedule.ts";

// Types the public functions above mention.
export type { IsacBinding, IsacVariant } from "./lib/isac/loss.ts";
export type { JointAttention, JointOptions } from "./lib/hooks/joint.ts";
export type { AttentionMasks, FusedQk } from "./lib/hooks/find.ts";
export type { TimestepSpacing } from "./lib/samplers/timesteps.ts";
export type { DiscreteSpec, ThresholdingSpec } from "./lib/samplers/scheduler_config.ts";
export type {
  DdimSpec,
  DdpmSpec,
  EulerSpec,
  FlowMatchSpec,
  LcmSpec,
} from "./lib/samplers/scheduler_config.ts";
export type { Thresholding } from "./lib/samplers/x0_clip.ts";
export type { SamplerFromConfigOptions } from "./lib/samplers/from_config.ts";
export type { BetaSchedule } from "./lib/samplers/schedule.ts";
export type { SchedulerSpec } from "./lib/samplers/scheduler_config.ts";
export type { X0Bounds } from "./lib/samplers/x0_clip.ts";
export type { UNKNOWN_FIELDS } from "./lib/onnx/proto.ts";
export type { UnknownFields } from "./lib/onnx/proto.ts";

// Namespaces.
export * as controls from "./lib/api/controls.ts";
export * as samplers from "./lib/api/samplers.ts";
export * as hooks from "./lib/api/hooks.ts";
export * as maps from "./lib/api/maps.ts";
export * as models from "./lib/api/models.ts";
export * as prompts from "./lib/api/prompts.ts";
export * as grounding from "./lib/api/grounding.ts";
export * as viz from "./lib/api/viz.ts";
export * as shapes from "./lib/api/shapes.ts";
export * as onnx from "./lib/api/onnx.ts";
export * as stats from "./lib/api/stats.ts";
