/**
 * A {@link Sampler} from a diffusers scheduler config, for any loader (HF-layout UNets, DiTs,
 * SD3/Flux-style flow models): `samplerFromConfig(json, steps)` checks the config
 * (`scheduler_config.ts`), computes the n-step schedule exactly as diffusers' `set_timesteps`
 * does, and wraps it in attnkit's step rule. `scheduleFromConfig` returns the schedule as plain
 * data (timesteps, ᾱ, σ) for inspection and tests.
 *
 * Where attnkit's own samplers (`ddim()`, `euler()`, …) and diffusers differ, this module follows
 * diffusers, since users compare against it:
 * - "trailing" timesteps are numpy's `round(arange(T, 0, −T/n)) − 1` with numpy's float
 *   arithmetic (`trailingTimesteps`, which `spacedTimesteps` uses), so when n does not divide
 *   T a value that is exactly k + ½ in real arithmetic may round either way (e.g. n = 48: the 4th
 *   timestep is 936, not 937). For the 62 step counts in 1..1000 where numpy's `arange` returns
 *   n + 1 values (n = 61, 103, 121, …) diffusers 0.42 runs an extra step at t = −1; attnkit
 *   keeps the first n.
 * - DDIM steps from t to t − ⌊T/n⌋ (ᾱ of the final step past 0: 1 with `set_alpha_to_one`, else
 *   ᾱ_0), not to the next timestep of the schedule; the two agree for "leading" spacing.
 * - DDPM adds noise at every step with t > 0 (with "fixed_large" also at a last step t = 1).
 * - Euler's initial noise σ is σ_max for "linspace"/"trailing" and √(σ_max² + 1) for "leading";
 *   "linspace" timesteps are float32, as diffusers makes them.
 * - diffusers computes β, ᾱ and σ in float32; attnkit in float64. They agree within 1e-4
 *   relative (the fixtures' tolerance; the largest gaps are float32 cancellation in 1 − ᾱ near
 *   t = 0, ~1e-4 in σ), timesteps within 2e-5 of 999.
 * - LCM: only the scheduler; a fully distilled LCM UNet also takes a guidance embedding
 *   (`timestep_cond`), which the pipeline, not the sampler, must feed.
 *
 * @module
 */
import { check } from "../errors.ts";
import { ddim } from "./ddim.ts";
import { ddpm } from "./ddpm.ts";
import { eulerSampler, interp } from "./euler.ts";
import { eulerAncestral } from "./euler_ancestral.ts";
import { flowMatchSampler } from "./flow_match.ts";
import { lcm, lcmTimesteps } from "./lcm.ts";
import type { Sampler } from "./sampler.ts";
import { alphasCumprod, betas, rescaleZeroTerminalSnr } from "./schedule.ts";
import {
  type DiscreteSpec,
  type EulerSpec,
  type FlowMatchSpec,
  resolveSchedulerConfig,
  type SchedulerSpec,
} from "./scheduler_config.ts";
import { spacedTimesteps } from "./timesteps.ts";

/** Options of {@link samplerFromConfig} and {@link scheduleFromConfig}. */
export interface SamplerFromConfigOptions {
  /** Run the config with another scheduler class (diffusers' `Other.from_config(config)`). */
  readonly className?: string;
  /** Where the config came from, for messages. */
  readonly source?: string;
  /** DDIM's η (a `step` argument in diffusers, default 0). */
  readonly eta?: number;
  /** Values per batch item (C·h·w), for dynamic thresholding (default: the whole latent). */
  readonly itemSize?: number;
  /**
   * Flow matching with `use_dynamic_shifting`: μ directly, or from the image's token count
   * `imageSeqLen` by diffusers' `calculate_shift` (linear from base_shift at base_image_seq_len to
   * max_shift at max_image_seq_len). Flux: (H/16)·(W/16); SD3: (H/16)·(W/16) too.
   */
  readonly mu?: number;
  /** Token count of the image latent, for μ (see `mu`). */
  readonly imageSeqLen?: number;
  /**
   * Flow matching: the n unshifted sigmas a pipeline passes to `set_timesteps(sigmas=…)` (Flux's
   * pipeline passes linspace(1, 1/n, n)); default: the scheduler's own.
   */
  readonly sigmas?: readonly number[];
}

/** An n-step schedule as plain data. */
export interface ConfigSchedule {
  /** The checked config. */
  readonly spec: SchedulerSpec;
  /** Model timesteps, noisiest first. */
  readonly timesteps: readonly number[];
  /** DDIM/DDPM: ᾱ at each step. */
  readonly alphaBar?: readonly number[];
  /** DDIM/DDPM: ᾱ each step goes to. */
  readonly alphaBarPrev?: readonly number[];
  /** Euler/flow: σ at each step, then the σ the last step goes to (n + 1 values). */
  readonly sigmas?: readonly number[];
  /** Standard deviation of the initial latent. */
  readonly initNoiseSigma: number;
  /** DDIM/DDPM/Euler: ᾱ_t of every training step. */
  readonly alphasCumprod?: Float64Array;
}

/** ᾱ_t of a DDPM-family config: trained or scheduled β, then the zero-SNR rescale. */
export function configAlphasCumprod(spec: DiscreteSpec): Float64Array {
  let b = spec.trainedBetas ? Float64Array.from(spec.trainedBetas) : betas({
    trainSteps: spec.trainSteps,
    betaStart: spec.betaStart,
    betaEnd: spec.betaEnd,
    betaSchedule: spec.betaSchedule,
  });
  if (spec.rescaleBetasZeroSnr) b = rescaleZeroTerminalSnr(b);
  return alphasCumprod(b);
}

/** numpy's `linspace(a, b, n)`: i·step + a, with the last value exactly b. */
function linspace(a: number, b: number, n: number): number[] {
  if (n === 1) return [a];
  const step = (b - a) / (n - 1);
  return Array.from({ length: n }, (_, i) => (i === n - 1 ? b : i * step + a));
}

/** The timesteps of a DDPM-family spec, as diffusers' `set_timesteps(steps)` makes them. */
function discreteTimesteps(spec: DiscreteSpec, steps: number, fractional: boolean): number[] {
  check(
    Number.isInteger(steps) && steps >= 1 && steps <= spec.trainSteps,
    "steps",
    `must be an integer in 1..${spec.trainSteps} (num_train_timesteps), got ${steps}`,
  );
  const ts = spacedTimesteps(steps, {
    trainSteps: spec.trainSteps,
    spacing: spec.spacing,
    stepsOffset: spec.stepsOffset,
    round: !fractional,
  });
  return fractional && spec.spacing === "linspace" ? ts.map(Math.fround) : ts;
}

/** Karras et al. (2022) eq. 5 with ρ = 7 between sigmaMax and sigmaMin. */
function karrasSigmas(max: number, min: number, n: number): number[] {
  const hi = max ** (1 / 7), lo = min ** (1 / 7);
  return linspace(0, 1, n).map((r) => (hi + r * (lo - hi)) ** 7);
}

/** Log-uniform sigmas from sigmaMax to sigmaMin. */
function exponentialSigmas(max: number, min: number, n: number): number[] {
  return linspace(Math.log(max), Math.log(min), n).map(Math.exp);
}

const isEuler = (spec: SchedulerSpec): spec is EulerSpec =>
  spec.kind === "euler" || spec.kind === "eulerAncestral";

function eulerSchedule(spec: EulerSpec, steps: number) {
  const table = configAlphasCumprod(spec);
  const T = table.length;
  // diffusers' Euler keeps σ finite at zero terminal SNR by setting ᾱ_{T−1} = 2⁻²⁴.
  if (spec.rescaleBetasZeroSnr) table[T - 1] = 2 ** -24;
  const sigmaTable = table.map((a) => Math.sqrt((1 - a) / a));
  const logTable = sigmaTable.map(Math.log);
  const index = Float64Array.from({ length: T }, (_, t) => t);
  let timesteps = discreteTimesteps(spec, steps, true);
  let sigmas = spec.interpolation === "log_linear"
    // diffusers' log_linear makes n + 1 sigmas from σ_max to σ_min; the n steps use the first n + 1.
    ? linspace(Math.log(sigmaTable[T - 1]), Math.log(sigmaTable[0]), steps + 1).map(Math.exp)
    : timesteps.map((t) => interp(t, index, sigmaTable));
  if (spec.sigmaSpacing !== "plain") {
    const max = spec.sigmaMax ?? sigmas[0], min = spec.sigmaMin ?? sigmas[sigmas.length - 1];
    sigmas = spec.sigmaSpacing === "karras"
      ? karrasSigmas(max, min, steps)
      : exponentialSigmas(max, min, steps);
    timesteps = sigmas.map((s) => interp(Math.log(Math.max(s, 1e-10)), logTable, index));
  }
  const last = spec.finalSigmas === "sigma_min" ? sigmaTable[0] : 0;
  const all = [...sigmas, last];
  if (spec.timestepType === "continuous" && spec.prediction === "v") {
    timesteps = all.slice(0, steps).map((s) => 0.25 * Math.log(s));
  }
  const max = Math.max(...all);
  return {
    timesteps,
    sigmas: all.slice(0, steps + 1),
    initNoiseSigma: spec.spacing === "leading" ? Math.sqrt(max * max + 1) : max,
    alphasCumprod: table,
  };
}

/** μ of diffusers' `calculate_shift`: linear in the image's token count. */
function flowMu(spec: FlowMatchSpec, opts: SamplerFromConfigOptions): number {
  const d = spec.dynamicShifting!;
  if (opts.mu !== undefined) {
    check(Number.isFinite(opts.mu), "mu", `must be a finite number, got ${opts.mu}`);
    return opts.mu;
  }
  check(
    opts.imageSeqLen !== undefined && Number.isFinite(opts.imageSeqLen) && opts.imageSeqLen > 0,
    "imageSeqLen",
    "use_dynamic_shifting is true in the scheduler config: pass mu, or imageSeqLen (the " +
      `image's token count) to derive it; got ${opts.imageSeqLen}`,
  );
  const m = (d.maxShift - d.baseShift) / (d.maxImageSeqLen - d.baseImageSeqLen);
  return opts.imageSeqLen * m + (d.baseShift - m * d.baseImageSeqLen);
}

function flowSchedule(spec: FlowMatchSpec, steps: number, opts: SamplerFromConfigOptions) {
  const T = spec.trainSteps;
  const shift = (s: number) => (spec.shift * s) / (1 + (spec.shift - 1) * s);
  let sigmas: number[];
  if (opts.sigmas) {
    check(
      opts.sigmas.length === steps && opts.sigmas.every((s) => s > 0 && s <= 1),
      "sigmas",
      `expected ${steps} values in (0, 1], got ${opts.sigmas.length}`,
    );
    sigmas = opts.sigmas.map(Math.fround);
  } else {
    // The training sigmas T/T … 1/T, shifted unless the shift is dynamic; n steps span them.
    const min = Math.fround(spec.dynamicShifting ? 1 / T : shift(1 / T));
    sigmas = linspace(T, min * T, steps).map((t) => t / T);
  }
  if (spec.dynamicShifting) {
    const mu = flowMu(spec, opts);
    const k = spec.dynamicShifting.timeShift === "exponential" ? Math.exp(mu) : mu;
    sigmas = sigmas.map((s) => k / (k + (1 / s - 1)));
  } else {
    sigmas = sigmas.map(shift);
  }
  if (spec.shiftTerminal) {
    const scale = (1 - sigmas[sigmas.length - 1]) / (1 - spec.shiftTerminal);
    sigmas = sigmas.map((s) => 1 - (1 - s) / scale);
  }
  if (spec.sigmaSpacing !== "plain") {
    const max = sigmas[0], min = sigmas[sigmas.length - 1];
    sigmas = spec.sigmaSpacing === "karras"
      ? karrasSigmas(max, min, steps)
      : exponentialSigmas(max, min, steps);
  }
  return { timesteps: sigmas.map((s) => s * T), sigmas: [...sigmas, 0], initNoiseSigma: 1 };
}

function asSpec(
  config: Readonly<Record<string, unknown>> | SchedulerSpec,
  opts: SamplerFromConfigOptions,
) {
  const isSpec = typeof (config as SchedulerSpec).kind === "string" &&
    (config as Record<string, unknown>)["_class_name"] === undefined;
  return isSpec && opts.className === undefined
    ? config as SchedulerSpec
    : resolveSchedulerConfig(config as Record<string, unknown>, opts);
}

/**
 * The n-step schedule of a diffusers scheduler config (or of a resolved {@link SchedulerSpec}),
 * computed as diffusers' `set_timesteps(steps)` does; see the module doc for where that differs
 * from attnkit's own samplers. Throws an AttnkitError naming the key for a refused config value,
 * `steps` for a step count the spacing cannot make.
 *
 * @example
 * ```ts
 * scheduleFromConfig({ _class_name: "EulerDiscreteScheduler", timestep_spacing: "trailing" }, 4)
 *   .timesteps; // [999, 749, 499, 249]
 * ```
 */
export function scheduleFromConfig(
  config: Readonly<Record<string, unknown>> | SchedulerSpec,
  steps: number,
  opts: SamplerFromConfigOptions = {},
): ConfigSchedule {
  const spec = asSpec(config, opts);
  check(Number.isInteger(steps) && steps >= 1, "steps", `must be a positive integer, got ${steps}`);
  if (spec.kind === "flowMatch") return { spec, ...flowSchedule(spec, steps, opts) };
  if (isEuler(spec)) return { spec, ...eulerSchedule(spec, steps) };
  const table = configAlphasCumprod(spec);
  if (spec.kind === "lcm") {
    const ts = lcmTimesteps(steps, spec.originalSteps, spec.trainSteps);
    const alphaBar = ts.map((t) => table[t]);
    // The last step returns the consistency output itself: a clean sample, ᾱ = 1.
    const alphaBarPrev = alphaBar.map((_, i) => (i + 1 < steps ? alphaBar[i + 1] : 1));
    return { spec, timesteps: ts, alphaBar, alphaBarPrev, initNoiseSigma: 1, alphasCumprod: table };
  }
  const timesteps = discreteTimesteps(spec, steps, false);
  check(
    spec.prediction !== "epsilon" || timesteps.every((t) => table[t] > 0),
    "rescale_betas_zero_snr",
    `gives ᾱ = 0 at t = ${spec.trainSteps - 1}, where an epsilon-prediction model's ` +
      "x̂₀ = (x − √(1−ᾱ) ε)/√ᾱ is undefined (diffusers returns inf); use it with " +
      'prediction_type "v_prediction", or spacing that does not visit the last step',
  );
  const last = spec.kind === "ddim" && !spec.setAlphaToOne ? table[0] : 1;
  const stride = Math.floor(spec.trainSteps / steps);
  const alphaBar = timesteps.map((t) => table[t]);
  const alphaBarPrev = spec.kind === "ddim"
    ? timesteps.map((t) => (t - stride >= 0 ? table[t - stride] : last))
    : alphaBar.map((_, i) => (i + 1 < steps ? alphaBar[i + 1] : 1));
  return { spec, timesteps, alphaBar, alphaBarPrev, initNoiseSigma: 1, alphasCumprod: table };
}

/**
 * A {@link Sampler} for a diffusers scheduler config: `_class_name` picks the step rule (DDIM,
 * DDPM, Euler, ancestral Euler, flow-matching Euler, LCM; PNDM runs as DDIM), every maths-changing
 * field is honoured, and an unknown value is refused with an AttnkitError naming its key. Give it
 * the parsed `scheduler_config.json` and the step count; DDPM, ancestral Euler, LCM, DDIM with
 * η > 0 and stochastic flow matching need `noise` in `step` (`sampler.stochastic` is true).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { samplerFromConfig } from "@attnkit/attnkit";
 * // SD 1.5's scheduler/scheduler_config.json (the maths-changing fields).
 * const cfg = {
 *   _class_name: "DDIMScheduler",
 *   num_train_timesteps: 1000,
 *   beta_schedule: "scaled_linear",
 *   beta_start: 0.00085,
 *   beta_end: 0.012,
 *   set_alpha_to_one: false,
 *   steps_offset: 1,
 *   prediction_type: "epsilon",
 *   timestep_spacing: "leading",
 * };
 * const sampler = samplerFromConfig(cfg, 4);
 * // as diffusers' scheduler.set_timesteps(4) gives them: 1000 // 4 spacing, offset 1
 * assert(sampler.timesteps().join() === "751,501,251,1");
 * ```
 */
export function samplerFromConfig(
  config: Readonly<Record<string, unknown>> | SchedulerSpec,
  steps: number,
  opts: SamplerFromConfigOptions = {},
): Sampler {
  const s = scheduleFromConfig(config, steps, opts);
  const spec = s.spec;
  if (spec.kind === "flowMatch") {
    return flowMatchSampler({ timesteps: s.timesteps, sigmas: s.sigmas! }, spec.stochastic);
  }
  if (isEuler(spec)) {
    const sched = { timesteps: s.timesteps, sigmas: s.sigmas!, initNoiseSigma: s.initNoiseSigma };
    return spec.kind === "euler"
      ? eulerSampler(sched, spec.prediction)
      : eulerAncestral(sched, spec.prediction);
  }
  const thresholding = spec.thresholding && { ...spec.thresholding, itemSize: opts.itemSize };
  if (spec.kind === "lcm") {
    return lcm({
      timesteps: s.timesteps,
      alphasCumprod: s.alphasCumprod!,
      timestepScaling: spec.timestepScaling,
      prediction: spec.prediction,
      clipSample: spec.clipSample,
      thresholding,
    });
  }
  const common = {
    alphasCumprod: s.alphasCumprod,
    timesteps: s.timesteps,
    prediction: spec.prediction,
    clipSample: spec.clipSample,
    thresholding,
  };
  if (spec.kind === "ddpm") {
    return ddpm({ ...common, variance: spec.variance, lastStep: "diffusers" });
  }
  return ddim({ ...common, setAlphaToOne: spec.setAlphaToOne, previous: "stride", eta: opts.eta });
}
