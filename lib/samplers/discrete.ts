/**
 * What DDPM and DDIM share: a training noise schedule ᾱ_t, an n-step subsequence of its
 * timesteps, and ᾱ at each step and at the step after it (the DDIM paper's τ_i and τ_{i−1}).
 * The step after the last is ᾱ = 1 (a clean image) unless a sampler says otherwise.
 *
 * @module
 */
import { check } from "../errors.ts";
import type { Prediction } from "./prediction.ts";
import { noiseSchedule, type NoiseScheduleOptions } from "./schedule.ts";
import { spacedTimesteps, type TimestepSpacing } from "./timesteps.ts";

/** Options common to the DDPM-family samplers (defaults: Stable Diffusion 1.5's config). */
export interface DiscreteSamplerOptions extends NoiseScheduleOptions {
  /** Denoising steps (default 50). */
  readonly steps?: number;
  /** What the model predicts: "epsilon" (default) or "v". */
  readonly prediction?: Prediction;
  /** Timestep spacing (default "leading"). */
  readonly spacing?: TimestepSpacing;
  /** Offset added to "leading" timesteps (default 1). */
  readonly stepsOffset?: number;
  /** A ᾱ table to use instead of the one the beta options describe. */
  readonly alphasCumprod?: Float64Array;
}

/** A DDPM-family schedule resolved for n steps. */
export interface DiscreteSchedule {
  /** Model timesteps, noisiest first. */
  readonly timesteps: readonly number[];
  /** ᾱ at each step. */
  readonly alphaBar: readonly number[];
  /** ᾱ at the step after each step (`final` after the last). */
  readonly alphaBarPrev: readonly number[];
  /** What the model predicts. */
  readonly prediction: Prediction;
}

/** Resolves the options into per-step ᾱ values; `final` is ᾱ after the last step. */
export function discreteSchedule(
  opts: DiscreteSamplerOptions,
  final: (alphaBar: Float64Array) => number,
): DiscreteSchedule {
  const table = opts.alphasCumprod ?? noiseSchedule(opts);
  check(
    table.length >= 1 && table.every((a) => a > 0 && a <= 1),
    "alphasCumprod",
    "expected values in (0, 1]",
  );
  const prediction = opts.prediction ?? "epsilon";
  check(
    prediction === "epsilon" || prediction === "v",
    "prediction",
    `"epsilon" or "v", got "${prediction}"`,
  );
  const timesteps = spacedTimesteps(opts.steps ?? 50, {
    trainSteps: table.length,
    spacing: opts.spacing,
    stepsOffset: opts.stepsOffset,
  });
  const alphaBar = timesteps.map((t) => table[t]);
  const last = final(table);
  const alphaBarPrev = alphaBar.map((_, i) => i + 1 < alphaBar.length ? alphaBar[i + 1] : last);
  return { timesteps, alphaBar, alphaBarPrev, prediction };
}
