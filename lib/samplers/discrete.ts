/**
 * What DDPM and DDIM share: a training noise schedule ᾱ_t, an n-step subsequence of its
 * timesteps, and ᾱ at each step and at the step after it (the DDIM paper's τ_i and τ_{i−1}).
 * The step after the last is ᾱ = 1 (a clean image) unless a sampler says otherwise.
 *
 * Which ᾱ a step goes to: "next" (default) takes the next timestep of the schedule (the DDIM
 * paper's τ_{i−1}, and diffusers' DDPM); "stride" takes t − ⌊T/n⌋ as diffusers' DDIMScheduler does,
 * which is the same for "leading" spacing but not for "linspace", nor for "trailing" when n does
 * not divide T (e.g. 3 trailing steps 999, 666, 332 go to 666, 333 and the final ᾱ).
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
  /** What the model predicts: "epsilon" (default), "v" or "sample". */
  readonly prediction?: Prediction;
  /** Timestep spacing (default "leading"). */
  readonly spacing?: TimestepSpacing;
  /** Offset added to "leading" timesteps (default 1). */
  readonly stepsOffset?: number;
  /** A ᾱ table to use instead of the one the beta options describe (values in [0, 1]). */
  readonly alphasCumprod?: Float64Array;
  /** Explicit timesteps, noisiest first (instead of `spacing`; e.g. diffusers' own). */
  readonly timesteps?: readonly number[];
  /** Which ᾱ each step goes to: "next" (default) or "stride" (diffusers' DDIM); see the module doc. */
  readonly previous?: "next" | "stride";
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
    table.length >= 1 && table.every((a) => a >= 0 && a <= 1),
    "alphasCumprod",
    "expected values in [0, 1]",
  );
  const prediction = opts.prediction ?? "epsilon";
  check(
    prediction === "epsilon" || prediction === "v" || prediction === "sample",
    "prediction",
    `"epsilon", "v" or "sample", got "${prediction}"`,
  );
  const T = table.length;
  const timesteps = opts.timesteps ? [...opts.timesteps] : spacedTimesteps(opts.steps ?? 50, {
    trainSteps: T,
    spacing: opts.spacing,
    stepsOffset: opts.stepsOffset,
  });
  check(
    timesteps.length >= 1 && timesteps.every((t) => Number.isInteger(t) && t >= 0 && t < T),
    "timesteps",
    `expected integers in 0..${T - 1}, got [${timesteps.join(", ")}]`,
  );
  const alphaBar = timesteps.map((t) => table[t]);
  if (prediction === "epsilon") {
    check(
      alphaBar.every((a) => a > 0),
      "alphasCumprod",
      "ᾱ = 0 at a visited timestep (zero terminal SNR): x̂₀ = (x − ε)/√ᾱ is undefined for an " +
        "epsilon-prediction model; use a v- or sample-prediction model",
    );
  }
  const last = final(table);
  const stride = Math.floor(T / timesteps.length);
  const alphaBarPrev = opts.previous === "stride"
    ? timesteps.map((t) => t - stride >= 0 ? table[t - stride] : last)
    : alphaBar.map((_, i) => i + 1 < alphaBar.length ? alphaBar[i + 1] : last);
  return { timesteps, alphaBar, alphaBarPrev, prediction };
}
