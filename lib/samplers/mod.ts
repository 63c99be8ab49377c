/**
 * Noise schedules and sampler step rules as pure functions on Float32Array latents: DDPM, DDIM,
 * Euler (Karras form) and flow-matching Euler, each also wrapped as a {@link Sampler} with a fixed
 * step count; x̂₀ helpers for attention-control methods; classifier-free guidance.
 *
 * @module
 */
export { alphasCumprod, betas, noiseSchedule, sigmasFromAlphasCumprod } from "./schedule.ts";
export type { BetaSchedule, NoiseScheduleOptions } from "./schedule.ts";
export { roundHalfEven, spacedTimesteps } from "./timesteps.ts";
export type { SpacingOptions, TimestepSpacing } from "./timesteps.ts";
export {
  epsFromV,
  predictX0,
  x0FromFlow,
  x0FromPrediction,
  x0FromSigma,
  x0FromV,
} from "./prediction.ts";
export type { Prediction } from "./prediction.ts";
export { cfg } from "./guidance.ts";
export { expectStepIndex } from "./sampler.ts";
export type { Sampler } from "./sampler.ts";
export type { DiscreteSamplerOptions } from "./discrete.ts";
export { ddim, ddimStep } from "./ddim.ts";
export type { DdimCoefficients, DdimOptions } from "./ddim.ts";
export { ddpm, ddpmStep } from "./ddpm.ts";
export type { DdpmCoefficients, DdpmOptions, DdpmVariance } from "./ddpm.ts";
export { euler, eulerInputScale, eulerSigmas, eulerStep } from "./euler.ts";
export type { EulerCoefficients, EulerOptions, EulerSchedule } from "./euler.ts";
export { flowMatch, flowMatchSigmas, flowMatchStep, shiftSigma } from "./flow_match.ts";
export type { FlowMatchOptions } from "./flow_match.ts";
