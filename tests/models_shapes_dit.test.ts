/**
 * The embedded DiT (weights/shapes-dit/, exported by weights/recipe/export_dit.py): it loads
 * through the same loader as the UNet model, its ONNX output equals torch's on the exporter's
 * fixed input (export_check.json), its joint attention comes back as ISAC's SA/CA taps, its
 * default sampler is flow-matching Euler, and the folder is self-contained.
 */
import assert from "node:assert/strict";
import { loadShapesModel, SHAPES_DIT_WEIGHTS } from "../lib/models/shapes.ts";
import { defaultSampler } from "../lib/runtime/sample.ts";
import { tensor } from "../lib/tensor.ts";

const dir = new URL("../weights/shapes-dit/", import.meta.url);

Deno.test("shapes-dit: loads, matches torch, taps are SA/CA blocks at 8×8", async () => {
  const model = await loadShapesModel({ dir: SHAPES_DIT_WEIGHTS });
  try {
    assert.equal(model.info.prediction, "flow");
    assert.deepEqual(model.info.latentShape, [4, 16, 16]);
    assert.equal(defaultSampler(model, 20).name, "flowMatch");
    const chk = JSON.parse(await Deno.readTextFile(new URL("export_check.json", dir)));
    const x = tensor([2, 4, 16, 16], Float32Array.from(chk.sample));
    const c = tensor([2, 32, 64], Float32Array.from(chk.encoder_hidden_states));
    const r = await model.denoise(x, chk.timestep[0], c, { taps: true });
    let worst = 0;
    r.out.data.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - chk.out_sample[i]))));
    assert.ok(worst < 1e-4, `onnxruntime vs torch: ${worst}`);
    const config = JSON.parse(await Deno.readTextFile(new URL("config.json", dir)));
    const taps = r.taps![1];
    assert.equal(taps.length, 2 * config.attention_layers.length);
    taps.forEach((t, i) => {
      assert.equal(t.kind, i % 2 === 0 ? "self" : "cross");
      assert.deepEqual(t.size, [8, 8]);
      assert.deepEqual(t.q.shape, [4, 64, 32]);
      assert.deepEqual(t.k.shape, [4, i % 2 === 0 ? 64 : 32, 32]);
    });
  } finally {
    await model.release();
  }
});

Deno.test("shapes-dit: every file the config names is in the folder", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("config.json", dir)));
  for (const f of Object.values(config.files) as string[]) {
    assert.ok(!f.includes("/") && !f.includes(".."), `${f} must be a plain file name`);
    assert.ok((await Deno.stat(new URL(f, dir))).isFile, f);
  }
  assert.deepEqual(config.tokens, { text: [0, 32], image: [32, 96] });
});
