/**
 * Attend-and-Excite's latent updates (methods spec §1) as an `adjust` hook of `sampleLatents`:
 * at every step i < `maxIterToAlter` (25) one gradient step z ← z − α_i ∇L on the A&E loss
 * (lib/losses/attend_excite.ts), α_i = 20·√(linspace(1, 0.5, steps)[i]); at the threshold steps
 * ({0: 0.05, 10: 0.5, 20: 0.8}), first the iterative refinement: while L > 1 − threshold, gradient
 * steps with the same α_i, at most `maxRefinementSteps` (20).
 *
 * The order copies the reference `__call__` and `_perform_iterative_refinement_step` exactly,
 * including a quirk: each refinement iteration evaluates L, updates, and the loop test reads the
 * L from before that update, so one more update is taken after L first drops below the target.
 * After the refinement L is re-evaluated, and the step's regular update uses that value. Each
 * candidate of a batch is refined on its own.
 *
 * Deviations: the loss reads the A&E resolution's layers (lib/losses/resolution.ts), our
 * softmax keeps every token after the start token unless `last` is given (SD 1.4's code drops
 * the final padding column; pass `last: L − 1` for that), and the sampler is whichever the caller
 * uses (A&E runs SD 1.4's default PNDM).
 *
 * @module
 */
import { check } from "../errors.ts";
import { attendExciteLoss, type AttendExciteOptions } from "../losses/attend_excite.ts";
import { type TapSelection, withTaps } from "../losses/resolution.ts";
import type { TokenColumns } from "../losses/types.ts";
import type { DiffusionModel } from "../runtime/model.ts";
import type { AdjustEvent } from "../runtime/sample.ts";
import { type Tensor, tensor } from "../tensor.ts";
import { isacSpecFor } from "./isac_spec.ts";
import { gsnStepSize } from "./iter_ref.ts";
import { NonFiniteLossError } from "./latent_grad.ts";
import { adjustGrad, type AdjustHook } from "./optimise_latent.ts";

/** Options of {@link attendExcite}; defaults are A&E's `RunConfig`. */
export interface AttendExciteRunOptions {
  /** Target tokens (default: the class tokens the prompt parser finds). */
  targets?: readonly TokenColumns[];
  /** Loss options other than the tokens (τ, last, smoothing). */
  loss?: Omit<AttendExciteOptions, "tokens">;
  /** Refinement thresholds by step index (default {0: 0.05, 10: 0.5, 20: 0.8}). */
  thresholds?: Readonly<Record<number, number>>;
  /** Steps with a gradient update: i < this (default 25). */
  maxIterToAlter?: number;
  /** Most refinement iterations per threshold step (default 20). */
  maxRefinementSteps?: number;
  /** α scale (default 20). */
  scaleFactor?: number;
  /** α range, linspace over the steps (default [1, 0.5]). */
  scaleRange?: readonly [number, number];
  /** Which taps feed the loss (default "attendExcite"). */
  taps?: TapSelection;
}

/** What happened at one step. */
export interface AttendExciteStepLog {
  /** Step index (0 = noisiest). */
  step: number;
  /** α_i. */
  alpha: number;
  /** Loss per candidate before anything was done at this step. */
  before: number[];
  /** Refinement iterations per candidate (0 when not a threshold step or already fine). */
  refinements: number[];
  /** Loss per candidate when the regular update was taken. */
  final: number[];
}

/** The hook with its log. */
export interface AttendExcite {
  /** Pass as `adjust` to `sampleLatents`. */
  readonly adjust: AdjustHook;
  /** One entry per altered step. */
  readonly log: AttendExciteStepLog[];
  /** The targets used. */
  readonly targets: readonly TokenColumns[];
}

/** Attend-and-Excite as an adjust hook; see the module doc. */
export function attendExcite(
  model: DiffusionModel,
  prompt: string,
  opts: AttendExciteRunOptions = {},
): AttendExcite {
  const targets = opts.targets ?? isacSpecFor(model, prompt).isac.tokens;
  check(targets.length > 0, "targets", `no target tokens found in "${prompt}"`);
  const thresholds = opts.thresholds ?? { 0: 0.05, 10: 0.5, 20: 0.8 };
  for (const [k, v] of Object.entries(thresholds)) {
    check(
      Number.isInteger(Number(k)) && Number(k) >= 0 && Number.isFinite(v),
      "thresholds",
      `expected step index → number, got ${k}: ${v}`,
    );
  }
  const maxIter = opts.maxIterToAlter ?? 25;
  const maxRefine = opts.maxRefinementSteps ?? 20;
  check(Number.isInteger(maxRefine) && maxRefine >= 0, "maxRefinementSteps", `got ${maxRefine}`);
  const tapped = withTaps(model, opts.taps ?? "attendExcite");
  const lossOpts = { ...opts.loss, tokens: targets };
  const loss = (maps: Parameters<typeof attendExciteLoss>[0]) => attendExciteLoss(maps, lossOpts);
  const log: AttendExciteStepLog[] = [];

  /** Loss and gradient of one candidate's latent. */
  const evaluate = async (e: AdjustEvent, x: Tensor, item: number) => {
    const one = tensor([1, ...x.shape.slice(1)], x.data);
    const per = e.context.data.length / e.context.shape[0];
    const ctx = tensor(
      [1, ...e.context.shape.slice(1)],
      e.context.data.slice(item * per, (item + 1) * per),
    );
    try {
      const r = await adjustGrad(tapped, { ...e, latents: one, context: ctx }, (m) => loss(m));
      return { value: r.values[0], grad: r.grad.data };
    } catch (err) {
      throw err instanceof NonFiniteLossError ? err.at(e.step, item) : err;
    }
  };
  const update = (x: Tensor, g: Float32Array, alpha: number): Tensor =>
    tensor(x.shape, x.data.map((v, j) => v - alpha * g[j]));

  const adjust: AdjustHook = async (e) => {
    const threshold = thresholds[e.step];
    if (e.step >= maxIter && threshold === undefined) return e.latents;
    const scale = opts.scaleFactor ?? 20;
    const alpha = gsnStepSize(e.step, e.steps, scale, opts.scaleRange ?? [1, 0.5]);
    const b = e.latents.shape[0];
    const per = e.latents.data.length / b;
    const out = new Float32Array(e.latents.data.length);
    const entry: AttendExciteStepLog = {
      step: e.step,
      alpha,
      before: [],
      refinements: [],
      final: [],
    };
    for (let i = 0; i < b; i++) {
      let x = tensor(
        [1, ...e.latents.shape.slice(1)],
        e.latents.data.slice(i * per, (i + 1) * per),
      );
      let r = await evaluate(e, x, i);
      entry.before.push(r.value);
      let iterations = 0;
      if (threshold !== undefined && r.value > 1 - threshold) {
        const target = Math.max(0, 1 - threshold);
        let seen = r.value;
        while (seen > target) {
          iterations++;
          // The first iteration's L is the one just computed (same latent).
          if (iterations > 1) r = await evaluate(e, x, i);
          seen = r.value;
          if (r.value !== 0) x = update(x, r.grad, alpha);
          if (iterations >= maxRefine) break;
        }
        r = await evaluate(e, x, i);
      }
      entry.refinements.push(iterations);
      entry.final.push(r.value);
      if (e.step < maxIter && r.value !== 0) x = update(x, r.grad, alpha);
      out.set(x.data, i * per);
    }
    log.push(entry);
    return tensor(e.latents.shape, out);
  };
  return { adjust, log, targets };
}
