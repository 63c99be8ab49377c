/**
 * The `Sampler` interface every step rule is wrapped in: a fixed n-step schedule, the model-input
 * scaling, and a pure `step(x, modelOut, i, noise?)` that returns a new latent. Samplers hold no
 * mutable state, so one instance can drive many seeds, and a control method may re-run a step
 * from the same `x` (e.g. to try a shifted latent).
 *
 * @module
 */
import { AttnkitError, check } from "../errors.ts";

/** A diffusion sampler with a fixed number of steps; every method is a pure function. */
export interface Sampler {
  /** "ddim", "ddpm", "euler", "eulerAncestral", "lcm" or "flowMatch". */
  readonly name: string;
  /** Number of denoising steps this sampler was built for. */
  readonly steps: number;
  /** Standard deviation of the initial latent: draw N(0, 1) noise and multiply by this. */
  readonly initNoiseSigma: number;
  /** Whether `step` needs its `noise` argument (N(0, 1), the latent's size) at some steps. */
  readonly stochastic?: boolean;
  /**
   * Model timesteps, one per step, noisiest first. `steps`, if given, must equal
   * {@link Sampler.steps} (a guard for callers that pass it; build a new sampler to change it).
   */
  timesteps(steps?: number): number[];
  /** The denoiser's input at step `i` (Euler's c_in·x; the latent itself for the others). */
  scaleInput(x: Float32Array, i: number): Float32Array;
  /** The latent after step `i`, from the model output at step `i`; `noise` for stochastic rules. */
  step(x: Float32Array, modelOut: Float32Array, i: number, noise?: Float32Array): Float32Array;
  /** The clean-latent estimate x̂₀ implied by the model output at step `i`. */
  predictX0(x: Float32Array, modelOut: Float32Array, i: number): Float32Array;
}

/** Throws an {@link AttnkitError} naming `step` unless `i` indexes an n-step schedule. */
export function expectStepIndex(i: number, steps: number): void {
  if (!(Number.isInteger(i) && i >= 0 && i < steps)) {
    throw new AttnkitError(
      "step",
      `index ${i} is outside the ${steps}-step schedule (valid indices 0..${steps - 1})`,
    );
  }
}

/** The `timesteps(steps?)` method shared by all samplers: a copy, guarded against a mismatch. */
export function timestepsMethod(name: string, ts: readonly number[]): (steps?: number) => number[] {
  return (steps?: number): number[] => {
    check(
      steps === undefined || steps === ts.length,
      "steps",
      () =>
        `this ${name} sampler was built for ${ts.length} steps, not ${steps}; ` +
        `build another with ${name}({ steps: ${steps} })`,
    );
    return [...ts];
  };
}

/** Checks a step count option (a positive integer). */
export function expectSteps(steps: number): void {
  check(
    Number.isInteger(steps) && steps >= 1,
    "steps",
    `must be a positive integer, got ${steps}`,
  );
}
