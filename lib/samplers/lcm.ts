/**
 * Latent Consistency Model sampling (Luo et al. 2023, Algorithm 1; diffusers' LCMScheduler): at
 * each step the model's x̂₀ goes through the consistency boundary condition
 * f = c_skip(t)·x + c_out(t)·x̂₀ with c_skip = σ_d² / ((s t)² + σ_d²), c_out = s t / √((s t)² + σ_d²)
 * (σ_d = 0.5, s = `timestep_scaling`), then is re-noised to the next timestep:
 * x_prev = √ᾱ_prev f + √(1 − ᾱ_prev) z. The last step returns f. The timesteps are a subset of the
 * distillation schedule k·i − 1 (i = 1 … `original_inference_steps`, k = T / that).
 *
 * @module
 */
import { check } from "../errors.ts";
import { expectIn, expectSameLength } from "./latent.ts";
import type { Prediction } from "./prediction.ts";
import { expectStepIndex, type Sampler, timestepsMethod } from "./sampler.ts";
import { boundX0, type X0Bounds } from "./x0_clip.ts";

/**
 * The n timesteps an LCM sampler visits: diffusers' `set_timesteps(n)` with strength 1.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { samplers } from "@attnkit/attnkit";
 * assert.deepEqual(samplers.lcmTimesteps(4), [999, 759, 499, 259]); // LCMScheduler, 50 original steps
 * ```
 */
export function lcmTimesteps(steps: number, originalSteps = 50, trainSteps = 1000): number[] {
  check(
    Number.isInteger(originalSteps) && originalSteps >= 1 && originalSteps <= trainSteps,
    "original_inference_steps",
    `must be an integer in 1..${trainSteps}, got ${originalSteps}`,
  );
  check(
    Number.isInteger(steps) && steps >= 1 && steps <= originalSteps,
    "steps",
    `must be an integer in 1..${originalSteps} (original_inference_steps), got ${steps}`,
  );
  const k = Math.floor(trainSteps / originalSteps);
  const origin = Array.from({ length: originalSteps }, (_, i) => (originalSteps - i) * k - 1);
  const stride = originalSteps / steps;
  return Array.from({ length: steps }, (_, i) => origin[Math.floor(i * stride)]);
}

/** An LCM schedule resolved for n steps. */
export interface LcmSchedule extends X0Bounds {
  /** Model timesteps, noisiest first. */
  readonly timesteps: readonly number[];
  /** ᾱ at every training step. */
  readonly alphasCumprod: Float64Array;
  /** `timestep_scaling` s of the boundary condition (default 10). */
  readonly timestepScaling?: number;
  /** What the model predicts (default "epsilon"). */
  readonly prediction?: Prediction;
}

/**
 * An LCM sampler; its `step` needs `noise` at every step but the last, and `predictX0` returns the
 * consistency output f.
 *
 * @example
 * ```ts
 * import { noiseSchedule } from "./schedule.ts";
 * const s = lcm({ timesteps: lcmTimesteps(4), alphasCumprod: noiseSchedule() });
 * s.timesteps(); // [999, 759, 499, 259]
 * ```
 */
export function lcm(s: LcmSchedule): Sampler {
  const n = s.timesteps.length;
  const scaling = s.timestepScaling ?? 10;
  expectIn(scaling, 0, Infinity, "timestepScaling");
  const pred = s.prediction ?? "epsilon";
  const table = s.alphasCumprod;
  check(
    n >= 1 && s.timesteps.every((t) => Number.isInteger(t) && t >= 0 && t < table.length),
    "timesteps",
    `expected integers in 0..${table.length - 1}`,
  );
  const consistency = (x: Float32Array, out: Float32Array, i: number): Float32Array => {
    expectStepIndex(i, n);
    expectSameLength(x, out, "modelOut");
    const t = s.timesteps[i], a = table[t];
    check(pred !== "epsilon" || a > 0, "alphasCumprod", `ᾱ = 0 at t = ${t} for an ε-model`);
    const sa = Math.sqrt(a), sb = Math.sqrt(1 - a);
    const raw = new Float32Array(x.length);
    for (let k = 0; k < x.length; k++) {
      const m = out[k];
      raw[k] = pred === "v" ? sa * x[k] - sb * m : pred === "sample" ? m : (x[k] - sb * m) / sa;
    }
    const x0 = boundX0(raw, s);
    const st = t * scaling, d2 = 0.25;
    const cSkip = d2 / (st * st + d2), cOut = st / Math.sqrt(st * st + d2);
    return x.map((xk, k) => cOut * x0[k] + cSkip * xk);
  };
  return {
    name: "lcm",
    steps: n,
    initNoiseSigma: 1,
    stochastic: n > 1,
    timesteps: timestepsMethod("lcm", s.timesteps),
    scaleInput(x: Float32Array, i: number): Float32Array {
      expectStepIndex(i, n);
      return x;
    },
    step(x: Float32Array, modelOut: Float32Array, i: number, noise?: Float32Array): Float32Array {
      const f = consistency(x, modelOut, i);
      if (i === n - 1) return f;
      check(noise !== undefined, "noise", `an LCM step needs ${x.length} N(0, 1) values`);
      expectSameLength(x, noise, "noise");
      const ap = table[s.timesteps[i + 1]];
      const a = Math.sqrt(ap), b = Math.sqrt(1 - ap);
      return f.map((v, k) => a * v + b * noise[k]);
    },
    predictX0: consistency,
  };
}
