/**
 * Samplers and the sampling loop: DDIM, DDPM, Euler, Euler ancestral, LCM and flow-matching step
 * rules as pure functions (checked against diffusers), noise schedules, diffusers scheduler
 * configs (`samplerFromConfig`), classifier-free guidance, and `sampleLatents` / `generate`, the
 * loop every control plugs into.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { samplers } from "@attnkit/attnkit";
 * const s = samplers.ddim({ steps: 10 });
 * assert(s.timesteps().length === 10);
 * ```
 *
 * @module
 */
export * from "../samplers/mod.ts";
export {
  type AdjustEvent,
  decodeLatents,
  defaultSampler,
  generate,
  initialLatents,
  sampleLatents,
  type SampleOptions,
  type StepEvent,
} from "../runtime/sample.ts";
export { type Progress, stepProgress, type StepProgressCallback } from "../runtime/progress.ts";
export { samplerFor, type SamplerName } from "../compose/sampler_for.ts";
export {
  configAlphasCumprod,
  type ConfigSchedule,
  samplerFromConfig,
  type SamplerFromConfigOptions,
  scheduleFromConfig,
} from "../samplers/from_config.ts";
export { trailingTimesteps } from "../samplers/timesteps.ts";
export {
  type DdimSpec,
  type DdpmSpec,
  type DiscreteSpec,
  type EulerSpec,
  type FlowMatchSpec,
  resolveSchedulerConfig,
  type ResolveSchedulerOptions,
  type SchedulerConfigJson,
  type SchedulerSpec,
  SUPPORTED_SCHEDULERS,
  type ThresholdingSpec,
} from "../samplers/scheduler_config.ts";
export { eulerAncestral, eulerAncestralStep } from "../samplers/euler_ancestral.ts";
export { boundX0, type Thresholding, type X0Bounds } from "../samplers/x0_clip.ts";
export { eulerSampler } from "../samplers/euler.ts";
export { flowMatchSampler, flowMatchStochasticStep } from "../samplers/flow_match.ts";
export { rescaleZeroTerminalSnr } from "../samplers/schedule.ts";
export { lcm, type LcmSchedule, lcmTimesteps } from "../samplers/lcm.ts";
export type { LcmSpec } from "../samplers/scheduler_config.ts";
export { checkSeed, gaussian, mulberry32, type Rng, seededRng, splitmix64 } from "../random.ts";
