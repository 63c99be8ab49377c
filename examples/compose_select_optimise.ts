/**
 * Composition 2: ISAC latent selection (best of 4 by Σ_t L_t, Algorithm 2) followed by ISAC latent
 * optimisation (Algorithm 1) from the winner's noise. Writes out/compose_select_optimise.png
 * (base seed | selected | selected + optimised) and prints the selection scores.
 *
 *   deno run -A examples/compose_select_optimise.ts
 *
 * @module
 */
import { pipe } from "npm:fp-ts@2.16.11/lib/function.js";
import { guide, loadShapesModel, lossOf, recipe, rules, run, savePng, select } from "../mod.ts";

const model = await loadShapesModel();
const base = recipe(model, "a photo of a red heart, a blue star and a yellow moon", {
  steps: 25,
  guidance: 5,
});
const plain = await pipe(base, run({ seed: 0 }));
const picked = await pipe(base, select({ score: lossOf.isac(), candidates: 4 }), run({ seed: 0 }));
const both = await pipe(
  base,
  select({ score: lossOf.isac(), candidates: 4 }),
  guide({ loss: lossOf.isac(), rule: rules.gradient(10) }),
  run({ seed: 0 }),
);
console.log(
  "selection scores",
  picked.selection!.scores.map((s) => s.toFixed(3)),
  "→ seed",
  picked.seed,
);
await Deno.mkdir("out", { recursive: true });
const images = [plain.images, picked.images, both.images];
console.log("wrote", await savePng("out/compose_select_optimise.png", images, { scale: 4 }));
await model.release();
