/**
 * Composition 1: Attend-and-Excite's loss on an Euler sampler, as a recipe. Writes
 * out/compose_ae_euler.png (base | A&E) and prints what the detector finds in each.
 *
 *   deno run -A examples/compose_ae_euler.ts
 *
 * @module
 */
import { pipe } from "npm:fp-ts@2.16.11/lib/function.js";
import {
  guide,
  loadShapesModel,
  lossOf,
  recipe,
  rules,
  run,
  samplers,
  savePng,
  shapes,
  viz,
} from "../mod.ts";

const model = await loadShapesModel();
const prompt = "a photo of a red circle, a blue square and a green triangle";
const base = recipe(model, prompt, {
  sampler: samplers.samplerFor("euler"),
  steps: 25,
  guidance: 5,
});
const plain = await pipe(base, run({ seed: 0 }));
const ae = await pipe(
  base,
  guide({ loss: lossOf.attendExcite(), rule: rules.gradient(20), at: (s) => s.step < 12 }),
  run({ seed: 0 }),
);
for (const [name, out] of [["base", plain], ["A&E", ae]] as const) {
  const found = shapes.detect(viz.imageBytes(out.images)).map((i) => `${i.colour} ${i.cls}`);
  console.log(`${name}: ${found.join(", ") || "nothing"}`);
}
await Deno.mkdir("out", { recursive: true });
console.log(
  "wrote",
  await savePng("out/compose_ae_euler.png", [plain.images, ae.images], { scale: 4 }),
);
await model.release();
