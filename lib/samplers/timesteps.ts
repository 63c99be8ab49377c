/**
 * Which training timesteps an n-step sampler visits, in the three spacings diffusers documents
 * (Lin et al. 2023, table 2): "leading" (Stable Diffusion 1.5's DDIM/PNDM config, with
 * `stepsOffset` 1: 981, 961, …, 1 for 50 steps), "trailing" (999, 979, …, 19) and "linspace"
 * (999, 979, 958, …, 0, rounded half to even as numpy does, or left fractional for Euler).
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

/** Rounds half to even, as numpy's `round` does (166.5 → 166, 499.5 → 500). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The `steps` timesteps of an n-step sampler, largest (noisiest) first. */
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
    const ratio = T / steps;
    ts = Array.from({ length: steps }, (_, i) => roundHalfEven(T - i * ratio) - 1);
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
