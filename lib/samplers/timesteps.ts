/**
 * Which training timesteps an n-step sampler visits, in the three spacings diffusers documents
 * (Lin et al. 2023, table 2): "leading" (Stable Diffusion 1.5's DDIM/PNDM config, with
 * `stepsOffset` 1: 981, 961, …, 1 for 50 steps), "trailing" (999, 979, …, 19) and "linspace"
 * (999, 979, 958, …, 0, rounded half to even as numpy does, or left fractional for Euler).
 * All three are computed with numpy's float arithmetic, as diffusers computes them: "trailing"
 * is `round(arange(T, 0, −T/n)) − 1`, whose arange steps by δ = (T − T/n) − T, so where n does
 * not divide T a real-arithmetic k + ½ can round either way (n = 48: T − 3T/n = 937.5 exactly,
 * which numpy's arange holds as 937.4999…, so the 4th timestep is 936, not 937). Where numpy's
 * arange yields n + 1 values (62 step counts in 1..1000, e.g. 61) diffusers 0.42 runs an extra
 * step at t = −1; attnkit keeps the first n.
 *
 * @module
 */
import { check } from "../errors.ts";

/** How an n-step schedule picks its timesteps out of the T training steps. */
export type TimestepSpacing = "leading" | "trailing" | "linspace";

/** Options of {@link spacedTimesteps}. */
export interface SpacingOptions {
  /** Number of training steps T (default 1000). */
  readonly trainSteps?: number;
  /** "leading" (default), "trailing" or "linspace". */
  readonly spacing?: TimestepSpacing;
  /** Added to every "leading" timestep (default 1, as Stable Diffusion 1.5's config). */
  readonly stepsOffset?: number;
  /** Round "linspace" timesteps to integers (default true; Euler keeps them fractional). */
  readonly round?: boolean;
}

/**
 * Rounds half to even, as numpy's `round` does (166.5 → 166, 499.5 → 500).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { samplers } from "@attnkit/attnkit";
 * assert.deepEqual([166.5, 499.5, 2.4].map(samplers.roundHalfEven), [166, 500, 2]);
 * ```
 */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * diffusers' "trailing" timesteps, `round(arange(T, 0, −T/n)) − 1` in numpy's arithmetic (arange
 * fills start + i·δ with δ = (start + step) − start), first n values.
 *
 * @example
 * ```ts
 * trailingTimesteps(4, 1000); // [999, 749, 499, 249]
 * trailingTimesteps(48, 1000)[3]; // 936 (numpy's 937.4999…), where exact 937.5 gives 937
 * ```
 */
export function trailingTimesteps(steps: number, trainSteps: number): number[] {
  const T = trainSteps, step = -(T / steps);
  const delta = (T + step) - T;
  return Array.from({ length: steps }, (_, i) => {
    const v = i === 0 ? T : i === 1 ? T + step : T + i * delta;
    return roundHalfEven(v) - 1;
  });
}

/**
 * The `steps` timesteps of an n-step sampler, largest (noisiest) first.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { samplers } from "@attnkit/attnkit";
 * // diffusers' "leading" (SD 1.5, steps_offset 1) and "trailing" spacings of 1000 training steps.
 * assert.deepEqual(samplers.spacedTimesteps(4, { spacing: "leading", stepsOffset: 1 }), [751, 501, 251, 1]);
 * assert.deepEqual(samplers.spacedTimesteps(4, { spacing: "trailing" }), [999, 749, 499, 249]);
 * ```
 */
export function spacedTimesteps(steps: number, opts: SpacingOptions = {}): number[] {
  const T = opts.trainSteps ?? 1000;
  const spacing = opts.spacing ?? "leading";
  const offset = opts.stepsOffset ?? 1;
  check(
    Number.isInteger(steps) && steps >= 1 && steps <= T,
    "steps",
    `must be an integer in 1..${T} (the training steps), got ${steps}`,
  );
  let ts: number[];
  if (spacing === "leading") {
    const ratio = Math.floor(T / steps);
    ts = Array.from({ length: steps }, (_, i) => (steps - 1 - i) * ratio + offset);
  } else if (spacing === "trailing") {
    ts = trailingTimesteps(steps, T);
  } else {
    check(
      spacing === "linspace",
      "spacing",
      `"leading", "trailing" or "linspace", got "${spacing}"`,
    );
    const step = steps === 1 ? 0 : (T - 1) / (steps - 1);
    ts = Array.from({ length: steps }, (_, i) => {
      const v = i === steps - 1 && steps > 1 ? T - 1 : i * step;
      return opts.round === false ? v : roundHalfEven(v);
    }).reverse();
  }
  check(
    ts[0] <= T - 1 && ts[ts.length - 1] >= 0,
    "steps",
    `${spacing} spacing with ${steps} steps and stepsOffset ${offset} reaches t = ${ts[0]}, ` +
      `outside 0..${T - 1}; use fewer steps or "trailing" spacing`,
  );
  return ts;
}
