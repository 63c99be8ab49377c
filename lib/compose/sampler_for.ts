/**
 * A sampler on the model's own training schedule (its β curve, T and prediction type), by name,
 * for `recipe(model, prompt, { sampler: samplerFor("euler") })`.
 *
 * @module
 */
import { check } from "../errors.ts";
import type { DiffusionModel } from "../runtime/model.ts";
import { ddim, type DdimOptions } from "../samplers/ddim.ts";
import { euler, type EulerOptions } from "../samplers/euler.ts";
import type { Sampler } from "../samplers/sampler.ts";
import { flowMatch } from "../samplers/flow_match.ts";

/** Sampler names {@link samplerFor} knows. */
export type SamplerName = "ddim" | "euler";

/**
 * A factory `(model, steps) → Sampler` for the named rule on the model's schedule; `extra`
 * passes rule options (e.g. Euler's `karras`).
 *
 * @throws {AttnkitError} naming `name` when it is not "ddim" or "euler" (the deterministic rules
 * the sampling loop drives; ancestral DDPM needs per-step noise).
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { samplerFor } from "./sampler_for.ts";
 * import { loadShapesModel } from "../models/shapes.ts";
 * const model = await loadShapesModel();
 * const s = samplerFor("euler")(model, 10);
 * assert(s.name === "euler" && s.timesteps().length === 10);
 * await model.release();
 * ```
 */
export function samplerFor(
  name: SamplerName,
  extra: Omit<EulerOptions & DdimOptions, "steps"> = {},
): (model: DiffusionModel, steps: number) => Sampler {
  check(
    name === "ddim" || name === "euler",
    "name",
    `expected "ddim" or "euler", got ${JSON.stringify(name)}`,
  );
  return (model, steps) => {
    if (model.info.prediction === "flow") {
      // A rectified-flow model (the DiT, SD3/Flux-class): Euler is flow-matching Euler.
      check(name === "euler", "name", `a flow model samples with "euler", not ${name}`);
      return flowMatch({
        steps,
        shift: model.info.flowShift ?? 1,
        trainSteps: model.info.trainSteps,
      });
    }
    const prediction = model.info.prediction;
    const b = model.info.betaSchedule;
    const base = {
      steps,
      betaSchedule: b.kind,
      betaStart: b.betaStart,
      betaEnd: b.betaEnd,
      trainSteps: model.info.trainSteps,
      prediction,
    };
    if (name === "euler") return euler({ ...base, ...extra });
    return ddim({ ...base, ...extra });
  };
}
