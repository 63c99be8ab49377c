import { assert, assertEquals } from "./assert.ts";
import { loadShapesModel } from "../lib/models/shapes.ts";
import { selectLatent } from "../lib/control/select_latent.ts";
import { decodeLatents } from "../lib/runtime/sample.ts";

const OPTS = { steps: 4, guidance: 4, candidates: 3 } as const;

Deno.test("ISAC latent selection on the embedded model", async (t) => {
  const model = await loadShapesModel();
  try {
    const prompt = "a photo of two red circles and a blue square";
    const sel = await selectLatent(model, prompt, { seed: 5, ...OPTS });

    await t.step("picks the candidate with the lowest summed L_t, below the others' mean", () => {
      const others = sel.scores.filter((_, i) => i !== sel.best);
      const mean = others.reduce((a, b) => a + b, 0) / others.length;
      assert(sel.scores[sel.best] <= Math.min(...others));
      assert(sel.scores[sel.best] < mean, `best ${sel.scores[sel.best]} vs mean ${mean}`);
      assertEquals(sel.perStep.length, OPTS.steps);
      const summed = sel.perStep.reduce((s, row) => s + row[sel.best], 0);
      assert(Math.abs(summed - sel.scores[sel.best]) < 1e-9);
    });

    await t.step("a candidate scores the same alone as in the batch", async () => {
      const alone = await selectLatent(model, prompt, {
        seed: 5 + sel.best,
        ...OPTS,
        candidates: 1,
      });
      assert(
        Math.abs(alone.scores[0] - sel.scores[sel.best]) <
          1e-3 * Math.max(1, Math.abs(alone.scores[0])),
        `alone ${alone.scores[0]} vs batched ${sel.scores[sel.best]}`,
      );
    });

    await t.step("decodes to [N, 3, 64, 64] images in [0, 1]", async () => {
      const images = await decodeLatents(model, sel.latents);
      assertEquals(images.shape, [3, 3, 64, 64]);
      assert(images.data.every((v) => v >= 0 && v <= 1));
      let lo = 1, hi = 0;
      for (const v of images.data) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
      assert(hi - lo > 0.2, "the images are not flat");
    });
  } finally {
    await model.release();
  }
});
