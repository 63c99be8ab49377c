/**
 * Step rules: how a control moves the latent given the gradient of its loss. A rule receives the
 * current latents and a function that evaluates the loss and its latent gradient at any latents
 * (one denoiser call with taps plus one reverse pass each), so a rule may evaluate once (a
 * gradient step) or several times (Adam shifts, iterative refinement).
 *
 * Sources: the plain step is ISAC Algorithm 1 (X̃_t = X_t − η∇L_t) and A&E's update; the Adam
 * shifts are the step-selection paper's IterRef (methods spec §3); the refinement loop is A&E's
 * iterative refinement (methods spec §1).
 *
 * @module
 */
import { check } from "../errors.ts";
import { type Tensor, tensor } from "../tensor.ts";
import { adamInit, adamStep } from "../control/iter_ref.ts";

/** The loss values `[N]` and latent gradient `[N, C, h, w]` at some latents. */
export interface Evaluation {
  /** Loss per candidate. */
  values: number[];
  /** d Σ loss / d latents. */
  grad: Tensor;
}

/** Evaluates the loss and its gradient at `x` (costs one tapped forward and one VJP). */
export type Evaluate = (x: Tensor) => Promise<Evaluation>;

/** A step rule: the latents to denoise, from the current ones; `values` gets every evaluation. */
export type StepRule = (x: Tensor, evaluate: Evaluate, values: number[][]) => Promise<Tensor>;

function axpy(x: Tensor, a: number, g: Tensor): Tensor {
  const out = new Float32Array(x.data.length);
  for (let j = 0; j < out.length; j++) out[j] = x.data[j] - a * g.data[j];
  return tensor(x.shape, out);
}

/**
 * One gradient step x − η·∇L (ISAC Alg. 1 with η; A&E with α_i when `eta` is a function of the
 * step fraction).
 *
 * @param eta step size ≥ 0, or a function of the step index and count returning it.
 * @throws {AttnkitError} naming `eta` when it is negative or not finite.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gradientStep } from "./rules.ts";
 * import { tensor } from "../tensor.ts";
 * const rule = gradientStep(0.5);
 * const x = tensor([1, 1, 1, 2], [1, 1]);
 * const y = await rule(x, async (z) => ({ values: [0], grad: tensor(z.shape, [2, 4]) }), []);
 * assert(y.data[0] === 0 && y.data[1] === -1);
 * ```
 */
export function gradientStep(eta: number): StepRule {
  check(Number.isFinite(eta) && eta >= 0, "eta", `must be a finite number ≥ 0, got ${eta}`);
  return async (x, evaluate, values) => {
    const e = await evaluate(x);
    values.push(e.values);
    return axpy(x, eta, e.grad);
  };
}

/** Options of {@link adamShifts}. */
export interface AdamShiftOptions {
  /** Learning rate (default 0.3, the step-selection paper's). */
  lr?: number;
  /** Number of shifts k (default 5). */
  shifts?: number;
  /** Adam β₁ (default 0.9). */
  beta1?: number;
  /** Adam β₂ (default 0.999). */
  beta2?: number;
  /** Adam ε (default 1e-3, gsn-factory's). */
  eps?: number;
}

/**
 * k Adam shifts of the latent at one step, each on a fresh evaluation (IterRef, methods spec §3).
 *
 * @throws {AttnkitError} naming `lr` or `shifts` when out of range.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { adamShifts } from "./rules.ts";
 * import { tensor } from "../tensor.ts";
 * const rule = adamShifts({ lr: 0.1, shifts: 2 });
 * const y = await rule(tensor([1, 1, 1, 1], [1]), async (z) => ({ values: [z.data[0]], grad: tensor(z.shape, [1]) }), []);
 * // Adam's first steps move by about lr each (its eps = 1e-3 shortens them slightly)
 * assert(Math.abs(y.data[0] - 0.8) < 1e-3);
 * ```
 */
export function adamShifts(opts: AdamShiftOptions = {}): StepRule {
  const lr = opts.lr ?? 0.3;
  const k = opts.shifts ?? 5;
  check(Number.isFinite(lr) && lr > 0, "lr", `must be a finite number > 0, got ${lr}`);
  check(Number.isInteger(k) && k >= 1, "shifts", `must be a positive integer, got ${k}`);
  return async (x, evaluate, values) => {
    let cur = x;
    const state = adamInit(x.data.length);
    for (let i = 0; i < k; i++) {
      const e = await evaluate(cur);
      values.push(e.values);
      const next = adamStep(cur.data, e.grad.data, state, lr, {
        beta1: opts.beta1,
        beta2: opts.beta2,
        eps: opts.eps,
      });
      cur = tensor(x.shape, next);
    }
    return cur;
  };
}

/** Options of {@link refine}. */
export interface RefineRuleOptions {
  /** Step size of each refinement step. */
  eta: number;
  /** Stop once every candidate's loss is at most this. */
  target: number;
  /** Most refinement steps (default 20, A&E's). */
  maxIterations?: number;
}

/**
 * Iterative refinement: gradient steps while any candidate's loss exceeds `target`, at most
 * `maxIterations` (A&E's `_perform_iterative_refinement_step`, without its one-extra-step quirk).
 *
 * @throws {AttnkitError} naming `eta`, `target` or `maxIterations` when out of range.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { refine } from "./rules.ts";
 * import { tensor } from "../tensor.ts";
 * // loss = x², gradient 2x: from x = 1 with η = 0.25, x halves each step until x² ≤ 0.1.
 * const rule = refine({ eta: 0.25, target: 0.1 });
 * const y = await rule(tensor([1, 1, 1, 1], [1]), async (z) => ({ values: [z.data[0] ** 2], grad: tensor(z.shape, [2 * z.data[0]]) }), []);
 * assert(y.data[0] === 0.25);
 * ```
 */
export function refine(opts: RefineRuleOptions): StepRule {
  const max = opts.maxIterations ?? 20;
  check(Number.isFinite(opts.eta) && opts.eta >= 0, "eta", `must be a finite number ≥ 0`);
  check(Number.isFinite(opts.target), "target", `must be a finite number, got ${opts.target}`);
  check(Number.isInteger(max) && max >= 0, "maxIterations", `must be an integer ≥ 0, got ${max}`);
  return async (x, evaluate, values) => {
    let cur = x;
    for (let i = 0; i <= max; i++) {
      const e = await evaluate(cur);
      values.push(e.values);
      if (i === max || e.values.every((v) => v <= opts.target)) break;
      cur = axpy(cur, opts.eta, e.grad);
    }
    return cur;
  };
}

/** The shape of {@link rules}. */
export interface RuleCatalogue {
  /** One gradient step x − η∇L. */
  gradient(eta: number): StepRule;
  /** k Adam shifts (IterRef). */
  adam(opts?: AdamShiftOptions): StepRule;
  /** Gradient steps until the loss is at most a target (A&E refinement). */
  refine(opts: RefineRuleOptions): StepRule;
}

/** The step rules by name, for `guide({ rule: rules.gradient(10) })`. */
export const rules: RuleCatalogue = { gradient: gradientStep, adam: adamShifts, refine };
