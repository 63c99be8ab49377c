/**
 * MIFO's box control (synthesis stage, MIFO §3.3) on the embedded model: a red heart in the left
 * half, a blue star in the right half. Writes out/mifo_boxes.png (base | boxes) and prints where
 * the detector finds each object (x of its centre, 0 = left edge, 1 = right).
 *
 *   deno run -A examples/mifo_boxes.ts
 *
 * @module
 */
import {
  controls,
  decodeLatents,
  loadShapesModel,
  sampleLatents,
  savePng,
  shapes,
  viz,
} from "../mod.ts";

const model = await loadShapesModel();
const prompt = "a photo of a red heart and a blue star";
const opts = { seed: 0, steps: 25, guidance: 5 };
const boxes = [[0.05, 0.2, 0.45, 0.8], [0.55, 0.2, 0.95, 0.8]] as const;
const boxed = await controls.mifoSynthesis(model, prompt, { ...opts, boxes });
const base = await sampleLatents(model, prompt, opts);
const images = [await decodeLatents(model, base), await decodeLatents(model, boxed.latents)];
for (const [name, img] of [["base", images[0]], ["boxes", images[1]]] as const) {
  const found = shapes.detect(viz.imageBytes(img)).map((i) =>
    `${i.colour} ${i.cls} at x=${((i.box[0] + i.box[2]) / 128).toFixed(2)}`
  );
  console.log(`${name}: ${found.join(", ") || "nothing"}`);
}
await Deno.mkdir("out", { recursive: true });
console.log("wrote", await savePng("out/mifo_boxes.png", images, { scale: 4 }));
await model.release();
