/**
 * `guide`: the one generic control. Before each chosen step it moves the latents with a step rule
 * on the gradient of a loss on attention maps — ISAC Algorithm 1, Attend-and-Excite's updates,
 * IterRef's Adam shifts and MIFO's box guidance are all `guide` with a different loss and rule.
 * The gradient flows through the sampler's input scaling and the denoiser's VJP
 * (lib/control/latent_grad.ts), on the conditional pass, as ISAC and A&E compute it.
 *
 * @module
 */
import { check } from "../errors.ts";
import { adjustGrad, itemNorms, selects, type StepFilter } from "../control/optimise_latent.ts";
import { NonFiniteLossError } from "../control/latent_grad.ts";
import { tensor } from "../tensor.ts";
import type { ControlLogEntry, Recipe } from "./recipe.ts";
import type { RunLoss } from "./losses.ts";
import type { StepRule } from "./rules.ts";
import type { AttentionMaps } from "../attention/types.ts";
import type { MapsLossResult } from "../control/latent_grad.ts";
import { AttnkitError } from "../errors.ts";

/** Checks a step filter: an array of step indices (integers ≥ 0) or a predicate. */
function checkStepFilter(at: unknown): void {
  if (at === undefined || typeof at === "function") return;
  check(
    Array.isArray(at) && at.every((i) => Number.isInteger(i) && i >= 0),
    "at",
    `expected step indices (integers ≥ 0) or a predicate on { step, steps, timestep }, got ${
      JSON.stringify(at)
    }`,
  );
}

/** A loss result checked for shape: a finite-or-not number and map gradients of the maps' shape. */
function checkedResult<R extends MapsLossResult>(r: R, maps: AttentionMaps): R {
  if (r === null || typeof r !== "object" || typeof r.value !== "number" || !r.grad) {
    throw new AttnkitError("loss", "must return { value: number, grad: { self?, cross? } }");
  }
  for (const part of ["self", "cross"] as const) {
    const g = r.grad[part];
    if (g === undefined) continue;
    const want = maps[part].shape;
    if (!g.shape || !(g.data instanceof Float32Array) || g.data.length !== maps[part].data.length) {
      throw new AttnkitError(
        "loss",
        `grad.${part} must be a tensor of shape [${want}] (tensor(shape, Float32Array))`,
      );
    }
  }
  return r;
}

/** Options of {@link guide}. */
export interface GuideOptions {
  /** The loss whose gradient moves the latents. */
  loss: RunLoss;
  /**
   * How the latents move, e.g. `rules.gradient(10)` (ISAC's Algorithm 1 with η = 10; the paper's
   * η = 0.01 barely moves the embedded model's latents), `rules.adam(…)`, `rules.refine(…)`.
   */
  rule: StepRule;
  /** Steps to act on: indices or a predicate on `{ step, steps, timestep, trainSteps }` (default all). */
  at?: StepFilter;
  /** Label in the run's log (default "guide"). */
  label?: string;
}

/**
 * Adds a guidance control to a recipe (data-last, for `pipe`). Controls run in the order added.
 *
 * @throws {AttnkitError} naming `loss` when it is not a function; at run time a
 * {@link NonFiniteLossError} naming the step, candidate and term when the loss turns NaN/Inf.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pipe } from "npm:fp-ts@2.16.11/lib/function.js";
 * import { guide, lossOf, recipe, rules, run } from "@attnkit/attnkit";
 * import { loadShapesModel } from "@attnkit/attnkit";
 * const model = await loadShapesModel();
 * const out = await pipe(
 *   recipe(model, "a photo of a red circle and a blue square", { steps: 4, guidance: 5 }),
 *   guide({ loss: lossOf.isac(), rule: rules.gradient(10) }),
 *   run({ seed: 0 }),
 * );
 * assert(out.images.shape[0] === 1 && out.log.length === 4);
 * await model.release();
 * ```
 */
export function guide(opts: GuideOptions): (r: Recipe) => Recipe {
  check(opts !== null && typeof opts === "object", "opts", "expected { loss, rule, at? }");
  check(typeof opts.loss === "function", "loss", "expected a loss (e.g. lossOf.isac())");
  check(
    typeof opts.rule === "function",
    "rule",
    "expected a step rule (e.g. rules.gradient(10), rules.adam(), rules.refine({ eta, target }))",
  );
  checkStepFilter(opts.at);
  const rule = opts.rule;
  const label = opts.label ?? "guide";
  return (r) => ({
    ...r,
    controls: [...r.controls, {
      label,
      make: (ctx) => {
        const loss = opts.loss(ctx);
        check(
          typeof loss === "function",
          "loss",
          "a recipe loss must return a map loss when the run starts (use lossOf.* or lossOf.lift)",
        );
        if (Array.isArray(opts.at)) {
          const n = ctx.sampler.steps;
          const bad = opts.at.find((i) => i >= n);
          check(bad === undefined, "at", `step ${bad} is outside the ${n}-step schedule`);
        }
        const log: ControlLogEntry[] = [];
        return {
          log,
          adjust: async (e) => {
            if (!selects(opts.at, e)) return e.latents;
            const values: number[][] = [];
            let next;
            try {
              next = await rule(e.latents, async (x) => {
                const g = await adjustGrad(
                  ctx.model,
                  { ...e, latents: x },
                  (maps, item) => checkedResult(loss(maps, item, e), maps),
                );
                return { values: g.values, grad: g.grad };
              }, values);
            } catch (err) {
              throw err instanceof NonFiniteLossError ? err.at(e.step) : err;
            }
            const diff = tensor(next.shape, next.data.map((v, j) => v - e.latents.data[j]));
            log.push({ control: label, step: e.step, values, shift: itemNorms(diff) });
            return next;
          },
        };
      },
    }],
  });
}
