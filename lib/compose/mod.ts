/**
 * Composition: a run is a {@link Recipe} (plain data) transformed by data-last controls and
 * executed by {@link run}, written with fp-ts `pipe`:
 *
 * ```ts ignore
 * import { pipe } from "npm:fp-ts@2.16.11/lib/function.js";
 * const out = await pipe(
 *   recipe(model, "a photo of a red circle and a blue square", { steps: 25, guidance: 5 }),
 *   select({ score: lossOf.isac(), candidates: 4 }),          // ISAC Algorithm 2
 *   guide({ loss: lossOf.isac(), rule: rules.gradient(10) }), // ISAC Algorithm 1
 *   run({ seed: 0 }),
 * );
 * ```
 *
 * @module
 */
export { isSampler, recipe, withSampler } from "./recipe.ts";
export type {
  ControlFactory,
  ControlLogEntry,
  Recipe,
  RecipeOptions,
  RunContext,
  RunControl,
  SamplerChoice,
  SelectionPass,
} from "./recipe.ts";
export { adamShifts, gradientStep, refine, rules } from "./rules.ts";
export type {
  AdamShiftOptions,
  Evaluate,
  Evaluation,
  RefineRuleOptions,
  RuleCatalogue,
  StepRule,
} from "./rules.ts";
export { attendExcite, box, gsn, iou, isac, lift, lossOf, sum } from "./losses.ts";
export type { BoxOptions, IsacLossOptions, LossCatalogue, RunLoss } from "./losses.ts";
export { guide, type GuideOptions } from "./guide.ts";
export { select, type SelectPassOptions } from "./select.ts";
export { run, samplerOf } from "./run.ts";
export type { Outcome, RunOptions, SelectionOutcome } from "./run.ts";
export { parseE, specE } from "./either.ts";
export { samplerFor, type SamplerName } from "./sampler_for.ts";
