/**
 * Controls: the composition layer (`recipe` → `guide` / `select` → `run`, with step `rules`) and
 * the paper-faithful controls it generalises — ISAC latent optimisation (Algorithm 1) and
 * selection (Algorithm 2), Attend-and-Excite, InitNO, SynGen, IterRef and step selection, MIFO box
 * synthesis, attention steering — plus the latent gradient through any denoiser.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { controls } from "@attnkit/attnkit";
 * const rule = controls.rules.gradient(10);
 * assert(typeof rule === "function");
 * ```
 *
 * @module
 */
export { guide, recipe, run, select, withSampler } from "../compose/mod.ts";
export { lossOf } from "../compose/losses.ts";
export { rules } from "../compose/rules.ts";
export type {
  AdamShiftOptions,
  BoxOptions,
  ControlFactory,
  ControlLogEntry,
  Evaluate,
  Evaluation,
  GuideOptions,
  IsacLossOptions,
  LossCatalogue,
  Outcome,
  Recipe,
  RecipeOptions,
  RefineRuleOptions,
  RuleCatalogue,
  RunContext,
  RunControl,
  RunLoss,
  RunOptions,
  SamplerChoice,
  SelectionOutcome,
  SelectionPass,
  SelectPassOptions,
  StepRule,
} from "../compose/mod.ts";
export { isacSpecFor, type PromptSpec } from "../control/isac_spec.ts";
export {
  expectFiniteLoss,
  latentGrad,
  type LatentGradResult,
  NonFiniteLossError,
} from "../control/latent_grad.ts";
export {
  adjustGrad,
  chainAdjust,
  isacMapsLoss,
  isacOptimiser,
  isacStepLoss,
  optimiseLatent,
} from "../control/optimise_latent.ts";
export type {
  AdjustHook,
  IsacLossFn,
  IsacOptimiserOptions,
  LatentOptimiser,
  Optimised,
  OptimiseOptions,
  OptimiseStepLog,
  StepAt,
  StepFilter,
  StepMapsLoss,
} from "../control/optimise_latent.ts";
export {
  type Selection as LatentSelection,
  selectLatent,
  type SelectOptions as SelectLatentOptions,
  type Snapshot,
} from "../control/select_latent.ts";
export {
  adamInit,
  type AdamOptions,
  type AdamState,
  adamStep,
  iterRef,
  type IterRefHook,
  type IterRefItemLog,
  type IterRefOptions,
  type IterRefStepLog,
} from "../control/iter_ref.ts";
export {
  type AttendExcite,
  attendExcite as attendExciteHook,
  type AttendExciteRunOptions,
  type AttendExciteStepLog,
} from "../control/attend_excite.ts";
export {
  type GsnRefiner,
  gsnRefiner,
  type GsnRefinerOptions,
  type GuidanceLog,
  selectStep,
  type SelectStepOptions,
  type StepScore,
  type StepSelection,
} from "../control/select_step.ts";
export {
  type MifoIteration,
  type MifoOptions,
  type MifoResult,
  type MifoStepLog,
  type MifoSubject,
  mifoSynthesis,
  refineMasks,
  type RefineOptions as MifoRefineOptions,
  type RefineStats,
} from "../control/mifo.ts";
export {
  boundedBias,
  type BoundedBiasOptions,
  type LayerGeometry,
  type MasksAt,
  type SteerCall,
  steeredModel,
} from "../control/steer.ts";
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
} from "../control/initno.ts";
export {
  promptColumns,
  type SynGen,
  synGen,
  type SynGenRunOptions,
  type SynGenStepLog,
  synGenSubtrees,
} from "../control/syngen.ts";
