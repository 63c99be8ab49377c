/**
 * Samplers and the sampling loop: DDIM, DDPM, Euler and flow-matching step rules as pure
 * functions (checked against diffusers), noise schedules, classifier-free guidance, and
 * `sampleLatents` / `generate`, the loop every control plugs into.
 *
 * @example
 * ```ts
 * import { samplers } from "../../mod.ts";
 * const s = samplers.ddim({ steps: 10 });
 * console.assert(s.timesteps().length === 10);
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
