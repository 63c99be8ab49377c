/**
 * `select`: choose the initial latent by a score, before the main run — ISAC's latent selection
 * (Algorithm 2): N candidates (seeds s, s+1, …) are denoised together without gradients, each
 * scored by Σ_t L_t on its own accumulated maps, and the lowest wins. The main run then starts
 * from the winner's initial noise (with the recipe's other controls), or, when the recipe has no
 * other controls, the winner's result is returned as it is (no second run).
 *
 * @module
 */
import { check } from "../errors.ts";
import type { Recipe } from "./recipe.ts";
import type { RunLoss } from "./losses.ts";

/** Options of {@link select}. */
export interface SelectPassOptions {
  /** The score, summed over steps (lowest wins), e.g. `lossOf.isac()` (ISAC's Σ_t L_t). */
  score: RunLoss;
  /** Candidates N (default 4, the paper's). */
  candidates?: number;
  /** Label in the outcome (default "select"). */
  label?: string;
}

/**
 * Adds an initial-latent selection pre-pass to a recipe (data-last, for `pipe`).
 *
 * @throws {AttnkitError} naming `candidates` unless it is an integer ≥ 2, or `score`.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pipe } from "npm:fp-ts@2.16.11/lib/function.js";
 * import { lossOf, loadShapesModel, recipe, run, select } from "@attnkit/attnkit";
 * const model = await loadShapesModel();
 * const out = await pipe(
 *   recipe(model, "a photo of three yellow hearts", { steps: 4, guidance: 5 }),
 *   select({ score: lossOf.isac(), candidates: 2 }),
 *   run({ seed: 0 }),
 * );
 * assert(out.selection!.scores.length === 2);
 * await model.release();
 * ```
 */
export function select(opts: SelectPassOptions): (r: Recipe) => Recipe {
  check(opts !== null && typeof opts === "object", "opts", "expected { score, candidates? }");
  const n = opts.candidates ?? 4;
  check(Number.isInteger(n) && n >= 2, "candidates", `must be an integer ≥ 2, got ${n}`);
  check(typeof opts.score === "function", "score", "expected a loss (e.g. lossOf.isac())");
  return (r) => {
    check(r.selection === undefined, "select", "the recipe already has a selection pre-pass");
    return {
      ...r,
      selection: { label: opts.label ?? "select", candidates: n, score: opts.score },
    };
  };
}
