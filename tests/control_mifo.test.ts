/**
 * MIFO box control: mask resizing and the Bounded-Attention bias on hand-built cases, the mask
 * refinement on synthetic attention, the whole synthesis loop on a pure fake model (latent
 * optimisation lowers the box loss, steering biases reach the denoiser, refinement runs, ISAC's
 * loss adds in), and bad input.
 */
import assert from "node:assert/strict";
import {
  eosColumn,
  mifoStepSize,
  mifoSynthesis,
  observe,
  refineMasks,
} from "../lib/control/mifo.ts";
import { boundedBias, HIDDEN, type LayerGeometry, resizeMask } from "../lib/control/steer.ts";
import { isacStepLoss } from "../lib/control/optimise_latent.ts";
import { rasterBox } from "../lib/losses/box.ts";
import { tensor } from "../lib/tensor.ts";
import type { AttentionMaps } from "../lib/attention/types.ts";
import { fakeModel } from "./control_fake_model.ts";
import { rejectsNaming } from "./losses_support.ts";

Deno.test("resizeMask: nearest-exact up and down", () => {
  const m = Uint8Array.from([1, 0, 0, 1]);
  assert.deepEqual([...resizeMask(m, [2, 2], [4, 4])], [
    1,
    1,
    0,
    0,
    1,
    1,
    0,
    0,
    0,
    0,
    1,
    1,
    0,
    0,
    1,
    1,
  ]);
  // 4×4 → 2×2 samples rows/columns ⌊(i + ½)·2⌋ = 1 and 3.
  const big = new Uint8Array(16);
  big[1 * 4 + 1] = 1;
  big[3 * 4 + 2] = 1;
  assert.deepEqual([...resizeMask(big, [4, 4], [2, 2])], [1, 0, 0, 0]);
});

Deno.test("boundedBias: cross hides subject tokens outside their masks (cond half), self blocks other subjects", () => {
  const layout: LayerGeometry[] = [
    { kind: "self", size: [2, 2], nk: 4 },
    { kind: "cross", size: [2, 2], nk: 5 },
  ];
  // Subject 0 = pixel 0, subject 1 = pixels 1 and 3, pixel 2 = background.
  const masks = [[Uint8Array.from([1, 0, 0, 0]), Uint8Array.from([0, 1, 0, 1])]];
  const bias = boundedBias(layout, () => masks, {
    tokens: [[1, 2], [3]],
    items: 1,
    cfg: true,
    eos: 4,
  });
  const [self, cross] = bias;
  assert.deepEqual(cross!.shape, [2, 1, 4, 5]);
  const H = HIDDEN;
  assert.deepEqual(
    [...cross!.data.slice(0, 20)],
    new Array(20).fill(0),
    "unconditional half untouched",
  );
  assert.deepEqual([...cross!.data.slice(20)], [
    0,
    0,
    0,
    H,
    0, // pixel 0: subject 0's tokens visible, subject 1's hidden
    0,
    H,
    H,
    0,
    0, // pixel 1: the other way round
    0,
    H,
    H,
    H,
    H, // pixel 2 (background): every subject token and the end token hidden
    0,
    H,
    H,
    0,
    0,
  ]);
  assert.deepEqual(self!.shape, [1, 1, 4, 4]);
  assert.deepEqual([...self!.data], [
    0,
    H,
    0,
    H, // subject 0 sees itself and the background
    H,
    0,
    0,
    0, // subject 1 sees itself and the background
    0,
    0,
    0,
    0, // background sees everything
    H,
    0,
    0,
    0,
  ]);
  // Without guidance: one conditional row; per-item masks give per-item rows on both halves.
  const noCfg = boundedBias(layout, () => masks, { tokens: [[1, 2], [3]], items: 1, cfg: false });
  assert.deepEqual(noCfg[1]!.shape, [1, 1, 4, 5]);
  assert.equal(noCfg[1]!.data[2 * 5 + 4], 0, "no eos given: end token visible");
  const two = [masks[0], [Uint8Array.from([0, 0, 1, 0]), Uint8Array.from([1, 0, 0, 0])]];
  const per = boundedBias(layout, () => two, { tokens: [[1, 2], [3]], items: 2, cfg: true });
  assert.deepEqual(per[0]!.shape, [4, 1, 4, 4]);
  assert.deepEqual(per[1]!.shape, [4, 1, 4, 5]);
  assert.deepEqual(
    [...per[0]!.data.slice(16, 32)],
    [...per[0]!.data.slice(48, 64)],
    "item 1 on both halves",
  );
  const shared = boundedBias(layout, () => [masks[0], masks[0]], {
    tokens: [[1, 2], [3]],
    items: 2,
    cfg: true,
  });
  assert.deepEqual(shared[1]!.shape, [4, 1, 4, 5]);
  assert.deepEqual(shared[0]!.shape, [1, 1, 4, 4]);
});

Deno.test("MIFO step size and penalty decay defaults", () => {
  assert.equal(mifoStepSize(0), 8);
  assert.equal(mifoStepSize(15), 2);
  assert.ok(Math.abs(mifoStepSize(5) - 6) < 1e-12);
});

/** 6×6 maps: two 3-pixel-wide blobs (left: columns 0-2, right: 3-5) attending within themselves. */
function twoBlobs(): AttentionMaps {
  const hw = 36, l = 4;
  const self = new Float32Array(hw * hw);
  const cross = new Float32Array(hw * l);
  const blob = (p: number) => (p % 6 < 3 ? 0 : 1);
  for (let q = 0; q < hw; q++) {
    let z = 0;
    for (let k = 0; k < hw; k++) z += blob(k) === blob(q) ? 1 : 0.05;
    for (let k = 0; k < hw; k++) self[q * hw + k] = (blob(k) === blob(q) ? 1 : 0.05) / z;
    const row = blob(q) === 0 ? [0.3, 0.6, 0.05, 0.05] : [0.3, 0.05, 0.6, 0.05];
    cross.set(row, q * l);
  }
  return { self: tensor([hw, hw], self), cross: tensor([hw, l], cross), size: [6, 6] };
}

Deno.test("refineMasks: clusters of self-attention, assigned by the cross maps, inside the boxes", () => {
  const maps = twoBlobs();
  const stats = observe(observe(undefined, maps, [1, 2]), maps, [1, 2]);
  assert.equal(stats.count, 2);
  const boxes = [rasterBox([0, 0, 0.5, 1], [6, 6]), rasterBox([0.5, 0, 1, 1], [6, 6])];
  const masks = refineMasks(stats, boxes, boxes, [6, 6], { clustersPerSubject: 2 });
  for (let p = 0; p < 36; p++) {
    assert.equal(masks[0][p], p % 6 < 3 ? 1 : 0, `subject 0 at ${p}`);
    assert.equal(masks[1][p], p % 6 < 3 ? 0 : 1, `subject 1 at ${p}`);
  }
  // A subject whose token got no attention ends empty, so it falls back to its box, cut from the rest.
  const silent = { ...stats, cross: [stats.cross[0], new Float64Array(36)] };
  const wide = [rasterBox([0, 0, 1, 1], [6, 6]), rasterBox([0.5, 0.5, 1, 1], [6, 6])];
  const fixed = refineMasks(silent, wide, wide, [6, 6], { clustersPerSubject: 2 });
  assert.deepEqual([...fixed[1]], [...wide[1]]);
  for (let p = 0; p < 36; p++) if (wide[1][p]) assert.equal(fixed[0][p], 0, `cut at ${p}`);
});

Deno.test("mifoSynthesis on the fake model: optimisation, steering, refinement", async () => {
  const { model, calls } = fakeModel();
  const prompt = "a red circle and a blue square";
  assert.equal(eosColumn(model, prompt), 8);
  const res = await mifoSynthesis(model, prompt, {
    boxes: [[0, 0, 0.5, 0.75], [0.5, 0, 1, 0.75]],
    seed: 3,
    candidates: 2,
    steps: 6,
    guidanceSteps: 3,
    iterations: 3,
    lossThreshold: 0,
    stepSize: () => 0.3,
    refineFrom: 4,
    refineEvery: 2,
    clustersPerSubject: 2,
  });
  assert.deepEqual(res.subjects, [{ tokens: [2, 3], leading: 3 }, { tokens: [6, 7], leading: 7 }]);
  assert.equal(res.eos, 8);
  assert.deepEqual(res.log.map((s) => s.step), [0, 1, 2]);
  for (const s of res.log) {
    assert.equal(s.iterations.length, 3);
    for (let i = 0; i < 2; i++) {
      const first = s.iterations[0].value[i], last = s.iterations[2].value[i];
      assert.ok(last < first, `step ${s.step}, item ${i}: box loss ${first} → ${last}`);
    }
  }
  assert.ok(Math.abs(res.log[1].alpha - 0.4) < 1e-12, "α(1) = alphaMax");
  assert.deepEqual(res.refinedAt, [4]);
  assert.equal(res.masks.length, 2);
  assert.deepEqual(res.maskSize, [4, 4]);
  // Regular passes (batch 4 = 2 × 2 candidates) are all biased; gradient passes never are.
  const regular = calls.filter((c) => c.batch === 4);
  assert.equal(regular.length, 6);
  for (const c of regular) {
    assert.ok(c.bias, "steered");
    assert.deepEqual(c.bias![1]!.shape, [4, 1, 16, 10]);
  }
  assert.ok(calls.filter((c) => c.batch !== 4).every((c) => !c.bias));
  // Before refinement both candidates share the box masks; after it each has its own.
  assert.deepEqual(regular[0].bias![0]!.shape, [1, 1, 16, 16]);
  assert.deepEqual(regular[5].bias![0]!.shape, [4, 1, 16, 16]);
  // Box masks at 4×4: subject 0 (tokens 2, 3) is hidden right of the middle, in the cond half.
  const cross0 = regular[0].bias![1]!.data;
  const condRow = (item: number, p: number) => ((2 + item) * 16 + p) * 10;
  assert.equal(cross0[condRow(0, 0) + 3], 0);
  assert.equal(cross0[condRow(0, 3) + 3], HIDDEN);
  assert.equal(cross0[condRow(0, 3) + 7], 0);
  assert.equal(cross0[(0 * 16 + 3) * 10 + 3], 0, "unconditional half untouched");
});

Deno.test("mifoSynthesis composes with ISAC's loss (summed) and can run unsteered", async () => {
  const { model, calls } = fakeModel();
  const prompt = "a red circle and a blue square";
  const extras: number[] = [];
  const isac = isacStepLoss({ tokens: [3, 7], counts: [1, 1] });
  const res = await mifoSynthesis(model, prompt, {
    boxes: [[0, 0, 0.5, 0.75], [0.5, 0, 1, 0.75]],
    seed: 1,
    steps: 3,
    guidance: 1,
    guidanceSteps: 1,
    iterations: 1,
    stepSize: () => 0.1,
    steer: false,
    extraLoss: (maps, item, at) => {
      const r = isac(maps, item, at);
      extras.push(r.value);
      return r;
    },
  });
  assert.equal(extras.length, 1);
  const it = res.log[0].iterations[0];
  // value = box + ISAC, normalised = box / 2 subjects.
  assert.ok(Math.abs(it.value[0] - (2 * it.normalized[0] + extras[0])) < 1e-9);
  assert.ok(calls.every((c) => !c.bias));
  assert.deepEqual(res.refinedAt, []);
});

Deno.test("mifoSynthesis: bad input names the argument", async () => {
  const { model } = fakeModel();
  const prompt = "a red circle and a blue square";
  const ok = { seed: 1, steps: 10, boxes: [[0, 0, 0.5, 1]] as const };
  const run = (o: Record<string, unknown>) => () => mifoSynthesis(model, prompt, { ...ok, ...o });
  await rejectsNaming(run({ boxes: [[0, 0, 1.5, 1]] }), "boxes[0]");
  await rejectsNaming(run({ boxes: [[0, 0, 1, 1], [0.2, 0.2, 0.2, 0.9]] }), "boxes[1]");
  await rejectsNaming(run({ boxes: [[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1]] }), "boxes");
  await rejectsNaming(run({ boxes: [] }), "boxes");
  await rejectsNaming(run({ guidanceSteps: 11 }), "guidanceSteps");
  await rejectsNaming(run({ refineFrom: 10 }), "refineFrom");
  await rejectsNaming(run({ steerFrom: 12 }), "steerFrom");
  await rejectsNaming(run({ iterations: -1 }), "iterations");
});
