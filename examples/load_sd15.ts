/**
 * Loading a Stable Diffusion 1.5-class ONNX folder in the Hugging Face layout (model_index.json,
 * scheduler/, tokenizer/, text_encoder/, unet/, vae_decoder/), finding its attention layers and
 * sampling with ISAC selection. With no argument it loads the repository's tiny random-weight
 * replica (tests/fixtures/hf_tiny), so the run shows the plumbing, not a picture; pass a real
 * folder (or an https:// base URL) to use one.
 *
 *   deno run -A examples/load_sd15.ts [FOLDER]
 *
 * @module
 */
import { pipe } from "npm:fp-ts@2.16.11/lib/function.js";
import { loadSd15Model, lossOf, recipe, run, select } from "../mod.ts";

const dir = Deno.args[0] ?? new URL("../tests/fixtures/hf_tiny", import.meta.url).pathname;
const model = await loadSd15Model(dir, { imageSize: [64, 64] });
console.log(`${model.info.name}: latent ${model.info.latentShape}, T = ${model.info.trainSteps}`);
const out = await pipe(
  recipe(model, "a red cube and a blue sphere", { steps: 4, guidance: 5 }),
  select({ score: lossOf.isac(), candidates: 2 }),
  run({ seed: 0 }),
);
console.log(
  "ISAC scores",
  out.selection!.scores.map((s) => s.toFixed(4)),
  "images",
  out.images.shape,
);
await model.release();
