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
import { gradientStep, type StepRule } from "./rules.ts";

/** Options of {@link guide}. */
export interface GuideOptions {
  /** The loss whose gradient moves the latents. */
  loss: RunLoss;
  /** How the latents move (default `rules.gradient(0.01)`, ISAC's η). */
  rule?: StepRule;
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
 * import { pipe } from "npm:fp-ts@2.16.11/lib/function.js";
 * import { guide, lossOf, recipe, rules, run } from "../../mod.ts";
 * import { loadShapesModel } from "../../mod.ts";
 * const model = await loadShapesModel();
 * const out = await pipe(
 *   recipe(model, "a photo of a red circle and a blue square", { steps: 4, guidance: 5 }),
 *   guide({ loss: lossOf.isac(), rule: rules.gradient(10) }),
 *   run({ seed: 0 }),
 * );
 * console.assert(out.images.shape[0] === 1 && out.log.length === 4);
 * await model.release();
 * ```
 */
export function guide(opts: GuideOptions): (r: Recipe) => Recipe {
  check(typeof opts.loss === "function", "loss", "expected a loss (e.g. lossOf.isac())");
  const rule = opts.rule ?? gradientStep(0.01);
  const label = opts.label ?? "guide";
  return (r) => ({
    ...r,
    controls: [...r.controls, {
      label,
      make: (ctx) => {
        const loss = opts.loss(ctx);
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
                  (maps, item) => loss(maps, item, e),
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
