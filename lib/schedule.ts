/**
 * Loss weights over denoising time: ISAC's phase schedules (Eq. 10-11 and the Table 2 ablation),
 * grounding-ratio windows, and MIFO's linear-then-cosine penalty decay.
 *
 * Time convention: `t` is the sampler's timestep, counting DOWN from `T` (noisiest, first step)
 * to 0, e.g. 981, 961, … with `T = 1000`. ISAC's principle is "instance first, then semantics",
 * so the instance weight must be large at large t.
 *
 * The paper is not consistent about this. The main text's soft schedule, λ_ins = t/T,
 * λ_cls = 1 − t/T (also Table 2's "ours"), is instance-first with t counting down, which matches
 * Algorithm 1 (`for t = T, …, 1`). Appendix C.1 writes it the other way round (λ_ins = 1 − t/T),
 * and Eq. 11 writes the hard schedule as λ_ins = 1 − H(t − t*), λ_cls = H(t − t*); both are
 * instance-first only if t counts UP (a step index). We follow the main text and read every
 * schedule in the down-counting convention by its stated intent: `soft` and `hard` put instances
 * first, `reverseSoft` and `reverseHard` put semantics first. So `hard` here is
 * λ_ins = H(t − t*), λ_cls = 1 − H(t − t*), i.e. Eq. 11 with t replaced by T − t.
 * H is the unit step with H(0) = 0: at t = t* the instance phase is over.
 *
 * @module
 */
import type { IsacWeights } from "./isac/loss.ts";

/** Loss weights at timestep `t` (counting down) of a process with horizon `T`. */
export type Schedule = (t: number, T: number) => IsacWeights;

/** A single scalar weight over time, `t` counting down from `T`. */
export type Gate = (t: number, T: number) => number;

/** Options of {@link ScheduleCatalogue.mifoDecay}; defaults are MIFO's `run()` values. */
export interface MifoDecayOptions {
  /** α at the first guidance step (default 0.4). */
  alphaMax?: number;
  /** α at the end of the linear stage (default 0.1). */
  alphaStage1End?: number;
  /** α after the cosine stage (default 0.01). */
  alphaFinal?: number;
  /** Guidance step at which the linear stage ends (default 3). */
  stage1Steps?: number;
  /** Guidance step at which the cosine stage ends (default 15). */
  guidanceSteps?: number;
}

/** The named schedules of ISAC's Table 2 and the other time-dependent weights. */
export interface ScheduleCatalogue {
  /** Ours (Table 2 G): λ_ins = t/T, λ_cls = 1 − t/T. */
  readonly soft: Schedule;
  /** Instance phase while t > t* (default T/2), then the semantic phase. */
  readonly hard: (tStar?: number) => Schedule;
  /** (1, 0) throughout. */
  readonly instanceOnly: Schedule;
  /** (0, 1) throughout. */
  readonly semanticOnly: Schedule;
  /** (w, 1 − w) throughout; the default w = 0.5 gives Table 2's (0.5, 0.5). */
  readonly fixed: (w?: number) => Schedule;
  /** Semantics first: λ_ins = 1 − H(t − t*), λ_cls = H(t − t*) (default t* = T/2). */
  readonly reverseHard: (tStar?: number) => Schedule;
  /** Semantics first: λ_ins = 1 − t/T, λ_cls = t/T. */
  readonly reverseSoft: Schedule;
  /** 1 during the first `ratio · T` of denoising (T − t < ratio · T), else 0. */
  readonly window: (ratio: number) => Gate;
  /**
   * MIFO's penalty weight α by guidance step `i` (0, 1, 2, …): linear from `alphaMax` at i = 1
   * to `alphaStage1End` at i = `stage1Steps`, then a half cosine down to `alphaFinal` at
   * `guidanceSteps`, constant after. As in MIFO's code, the linear formula is used for every
   * i ≤ stage1Steps, so i = 0 extrapolates above `alphaMax` (0.55 with the defaults).
   */
  readonly mifoDecay: (opts?: MifoDecayOptions) => (i: number) => number;
}

const step = (x: number): number => (x > 0 ? 1 : 0);

/**
 * ISAC's and related schedules; see {@link ScheduleCatalogue} and the module doc for conventions.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { schedule } from "@attnkit/attnkit";
 * // λ_t for ISAC's soft schedule (t counts down from T = 1000): instance-heavy early, semantic late.
 * assert.deepEqual(schedule.soft(750, 1000), { ins: 0.75, cls: 0.25 });
 * assert.deepEqual(schedule.soft(250, 1000), { ins: 0.25, cls: 0.75 });
 * ```
 */
export const schedule: ScheduleCatalogue = {
  soft: (t, T) => ({ ins: t / T, cls: 1 - t / T }),
  hard: (tStar) => (t, T) => {
    const h = step(t - (tStar ?? T / 2));
    return { ins: h, cls: 1 - h };
  },
  instanceOnly: () => ({ ins: 1, cls: 0 }),
  semanticOnly: () => ({ ins: 0, cls: 1 }),
  fixed: (w = 0.5) => () => ({ ins: w, cls: 1 - w }),
  reverseHard: (tStar) => (t, T) => {
    const h = step(t - (tStar ?? T / 2));
    return { ins: 1 - h, cls: h };
  },
  reverseSoft: (t, T) => ({ ins: 1 - t / T, cls: t / T }),
  window: (ratio) => (t, T) => (T - t < ratio * T ? 1 : 0),
  mifoDecay: (opts = {}) => {
    const a0 = opts.alphaMax ?? 0.4;
    const a1 = opts.alphaStage1End ?? 0.1;
    const a2 = opts.alphaFinal ?? 0.01;
    const s1 = opts.stage1Steps ?? 3;
    const s2 = opts.guidanceSteps ?? 15;
    return (i) => {
      if (i <= s1) return s1 > 1 ? a0 + ((a1 - a0) * (i - 1)) / (s1 - 1) : a0;
      if (i < s2) return a2 + ((a1 - a2) * (1 + Math.cos((Math.PI * (i - s1)) / (s2 - s1)))) / 2;
      return a2;
    };
  },
};
