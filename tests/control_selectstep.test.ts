/**
 * Step selection: `selectStep` returns the argmax of its score table (an injected generator with
 * a known best step, and the real IterRef pipeline on a pure fake model), the GSN refiner shifts
 * the latent only at its step, and step indices past the schedule are refused.
 */
import assert from "node:assert/strict";
import { attendExcite } from "../lib/control/attend_excite.ts";
import { gsnRefiner, selectStep } from "../lib/control/select_step.ts";
import { latentGrad } from "../lib/control/latent_grad.ts";
import { lossOf } from "../lib/losses/mod.ts";
import { sampleLatents } from "../lib/runtime/sample.ts";
import { gaussian, mulberry32 } from "../lib/random.ts";
import { type Tensor, tensor } from "../lib/tensor.ts";
import { fakeModel } from "./control_fake_model.ts";
import { rejectsNaming } from "./losses_support.ts";

Deno.test("selectStep: the argmax and the table, with a generator of known quality", async () => {
  const { model } = fakeModel();
  // Image value = a score peaking at step 8, plus a per-prompt and per-seed offset.
  const quality = (step: number) => -((step - 8) ** 2);
  const prompts = ["a red circle", "a blue square and a red circle"];
  const seeds = [3, 4, 5];
  const seen: string[] = [];
  const sel = await selectStep(model, {
    candidates: [0, 4, 8, 12],
    prompts,
    seeds,
    steps: 20,
    generate: (step, prompt, seed) => {
      seen.push(`${step}/${prompt}/${seed}`);
      const v = quality(step) + prompts.indexOf(prompt) + 0.1 * seed;
      return Promise.resolve(tensor([1, 3, 1, 1], [v, 0, 0]));
    },
    score: (image: Tensor) => image.data[0],
  });
  assert.equal(sel.best, 8);
  assert.equal(sel.table.length, 4);
  assert.equal(seen.length, 4 * 2 * 3, "every step × prompt × seed once");
  for (const row of sel.table) {
    // Mean of quality + prompt offsets {0, 1} + seed offsets {0.3, 0.4, 0.5}.
    const want = quality(row.step) + 0.5 + 0.4;
    assert.ok(Math.abs(row.score - want) < 1e-5, `step ${row.step}: ${row.score} vs ${want}`);
    assert.deepEqual(row.scores.map((r) => r.length), [3, 3]);
  }
  assert.equal(sel.bestScore, sel.table[2].score);
  assert.deepEqual(sel.table.map((r) => r.timestep), [951, 751, 551, 351], "DDIM 20 of 1000");
});

Deno.test("selectStep on the fake model: IterRef at each candidate, best = argmax of the table", async () => {
  const { model, calls } = fakeModel();
  const scored: number[] = [];
  const sel = await selectStep(model, {
    candidates: [1, 3],
    prompts: ["a red circle and a blue square"],
    seeds: [1, 2],
    steps: 5,
    guidance: 1,
    refine: { shifts: 2 },
    score: (image) => {
      const s = image.data.reduce((a, b) => a + b, 0) / image.data.length;
      scored.push(s);
      return s;
    },
  });
  assert.equal(scored.length, 4);
  const means = [(scored[0] + scored[1]) / 2, (scored[2] + scored[3]) / 2];
  means.forEach((m, i) => assert.ok(Math.abs(sel.table[i].score - m) < 1e-12));
  assert.equal(sel.best, means[1] > means[0] ? 3 : 1);
  // 4 runs × (5 steps + 2 shifts with taps).
  assert.equal(calls.length, 4 * 7);
  assert.equal(calls.filter((c) => c.taps).length, 4 * 2);
});

Deno.test("GSN refiner: Adam shifts only at its step; the loss falls; GSNg afterwards", async () => {
  const { model } = fakeModel();
  const prompt = "a red circle and a blue square";
  const plain = await sampleLatents(model, prompt, { seed: 7, steps: 6, guidance: 1 });
  const r = gsnRefiner(model, prompt, {
    step: 2,
    shifts: 5,
    lr: 0.05,
    guidance: { until: 5, lr: () => 0.01 },
  });
  assert.deepEqual(r.targets, [3, 7], "class tokens of circle and square");
  const refined = await sampleLatents(model, prompt, {
    seed: 7,
    steps: 6,
    guidance: 1,
    adjust: r.adjust,
  });
  assert.equal(r.iterRef.length, 1);
  assert.equal(r.iterRef[0].step, 2);
  const values = r.iterRef[0].items[0].values;
  assert.equal(values.length, 5);
  assert.ok(values[values.length - 1] < values[0], `GSN loss ${values}`);
  assert.deepEqual(r.guidance.map((g) => g.step), [3, 4]);
  assert.ok(refined.data.some((v, i) => v !== plain.data[i]), "the latent moved");
});

Deno.test("the fake model's gradient matches finite differences through latentGrad", async () => {
  const { model } = fakeModel();
  const ctx = await model.encodeText(["a red circle and a blue square"]);
  const x = tensor([1, 1, 4, 4], gaussian(mulberry32(3), 16));
  const loss = lossOf.gsn({ tokens: [3, 7], tau: 10 });
  const r = await latentGrad(model, x, 500, ctx, loss);
  const h = 1e-2;
  for (const j of [0, 5, 10, 15]) {
    const up = x.data.slice(), dn = x.data.slice();
    up[j] += h;
    dn[j] -= h;
    const fu = (await latentGrad(model, tensor(x.shape, up), 500, ctx, loss)).values[0];
    const fd = (await latentGrad(model, tensor(x.shape, dn), 500, ctx, loss)).values[0];
    const num = (fu - fd) / (2 * h);
    assert.ok(
      Math.abs(num - r.grad.data[j]) < 2e-3 + 0.02 * Math.abs(num),
      `${j}: ${num} vs ${r.grad.data[j]}`,
    );
  }
});

Deno.test("step indices past the schedule name `step`", async () => {
  const { model } = fakeModel();
  const base = { prompts: ["a red circle"], seeds: [1], score: () => 0, steps: 10 };
  await rejectsNaming(() => selectStep(model, { ...base, candidates: [2, 10] }), "step");
  await rejectsNaming(() => selectStep(model, { ...base, candidates: [-1] }), "step");
  await rejectsNaming(() => selectStep(model, { ...base, candidates: [1.5] }), "step");
  await rejectsNaming(() => selectStep(model, { ...base, candidates: [] }), "candidates");
  await rejectsNaming(
    () => selectStep(model, { ...base, candidates: [1], prompts: [] }),
    "prompts",
  );
  await rejectsNaming(() => selectStep(model, { ...base, candidates: [1], seeds: [] }), "seeds");
  await rejectsNaming(
    () =>
      selectStep(model, {
        ...base,
        candidates: [1],
        generate: () => Promise.resolve(tensor([3, 1, 1])),
        score: () => NaN,
      }),
    "score",
  );
  await rejectsNaming(
    () => Promise.resolve(gsnRefiner(model, "a red circle", { step: 6, steps: 6 })),
    "step",
  );
  // Unknown at construction: refused when sampling reaches the hook.
  const r = gsnRefiner(model, "a red circle", { step: 9 });
  await rejectsNaming(
    () =>
      sampleLatents(model, "a red circle", { seed: 1, steps: 4, guidance: 1, adjust: r.adjust }),
    "step",
  );
});

Deno.test("Attend-and-Excite hook: refinement at threshold steps, one update per step before 25", async () => {
  const { model, calls } = fakeModel();
  const prompt = "a red circle and a blue square";
  const ae = attendExcite(model, prompt, {
    thresholds: { 0: 0.999, 2: 0 },
    maxIterToAlter: 3,
    maxRefinementSteps: 3,
    scaleFactor: 0.5,
    loss: { tau: 10 },
  });
  await sampleLatents(model, prompt, { seed: 2, steps: 5, guidance: 1, adjust: ae.adjust });
  assert.deepEqual(ae.log.map((s) => s.step), [0, 1, 2]);
  // Step 0: 1 − 0.999 is out of reach, so exactly maxRefinementSteps iterations.
  assert.deepEqual(ae.log[0].refinements, [3]);
  // Step 2: L > 1 − 0 never holds, so no refinement; step 1 has no threshold.
  assert.deepEqual(ae.log[1].refinements, [0]);
  assert.deepEqual(ae.log[2].refinements, [0]);
  assert.ok(ae.log[0].final[0] < ae.log[0].before[0], `${ae.log[0].before} → ${ae.log[0].final}`);
  assert.ok(Math.abs(ae.log[1].alpha - 0.5 * Math.sqrt(1 - 0.5 / 4)) < 1e-12, "α = s·√linspace");
  // Gradient passes: step 0: 1 + 2 (refinement) + 1 (re-evaluation); steps 1, 2: 1 each.
  assert.equal(calls.filter((c) => c.taps).length, 6);
});
