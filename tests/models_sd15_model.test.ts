import { assert, assertEquals } from "./assert.ts";
import { loadSd15Model } from "../lib/models/sd15_model.ts";
import { selectLatent } from "../lib/control/select_latent.ts";
import { decodeLatents } from "../lib/runtime/sample.ts";

const TINY = new URL("./fixtures/hf_tiny/", import.meta.url).pathname;

Deno.test("an SD 1.5-layout pipeline runs ISAC latent selection through its tapped UNet", async () => {
  const model = await loadSd15Model(TINY, { imageSize: [64, 64] });
  try {
    assertEquals(model.info.latentShape, [4, 8, 8]);
    const sel = await selectLatent(model, "two cats and a dog", {
      seed: 3,
      candidates: 2,
      steps: 3,
      guidance: 2,
      keepSteps: [1],
    });
    assertEquals(sel.spec.targets.map((t) => [t.word, t.count]), [["cat", 2], ["dog", 1]]);
    assertEquals(sel.latents.shape, [2, 4, 8, 8]);
    assert(sel.scores.every(Number.isFinite), `scores ${sel.scores}`);
    assertEquals(sel.best, sel.scores.indexOf(Math.min(...sel.scores)));
    const snap = sel.snapshots[0][0];
    assertEquals(snap.maps.self.shape, [64, 64]);
    assertEquals(snap.maps.cross.shape[0], 64);
    const images = await decodeLatents(model, sel.latents);
    assertEquals(images.shape[0], 2);
    assertEquals(images.shape[1], 3);
    assert(images.data.every((v) => v >= 0 && v <= 1));
  } finally {
    await model.release();
  }
});
