/**
 * The InitNO and SynGen controls on the fake model (tests/control_fake_model.ts): the noise
 * parametrisation, Adam and KL loop of `fn_initno` against a hand-written replay, the round/pool
 * rules, the refinement bookkeeping, SynGen's update rule and window, and bad input.
 */
import assert from "node:assert/strict";
import { accumulateMaps } from "../lib/attention/accumulate.ts";
import { initNo, initNoNoise, initNoOptimise } from "../lib/control/initno.ts";
import { adamInit, adamStep } from "../lib/control/iter_ref.ts";
import { latentGrad } from "../lib/control/latent_grad.ts";
import { promptColumns, synGen, synGenSubtrees } from "../lib/control/syngen.ts";
import { isacSpecFor } from "../lib/control/isac_spec.ts";
import { initNoKl } from "../lib/losses/initno.ts";
import { synGenLoss } from "../lib/losses/syngen.ts";
import type { DiffusionModel } from "../lib/runtime/model.ts";
import { defaultSampler, initialLatents, sampleLatents } from "../lib/runtime/sample.ts";
import { type Tensor, tensor } from "../lib/tensor.ts";
import { fakeModel } from "./control_fake_model.ts";
import { rejectsNaming } from "./losses_support.ts";

const PROMPT = "a red circle and a blue square";

/** The fake model with its latent gradient replaced by 2·x (the taps' gradients are ignored). */
function quadraticModel(): DiffusionModel {
  const { model } = fakeModel();
  return {
    ...model,
    gradient: (latents: Tensor) =>
      Promise.resolve(tensor(latents.shape, latents.data.map((v) => 2 * v))),
  };
}

async function firstEvent(model: DiffusionModel, seed: number) {
  const sampler = defaultSampler(model, 10);
  const ctx = await model.encodeText([PROMPT]);
  const latents = initialLatents(model.info.latentShape, seed, 1, sampler.initNoiseSigma);
  const e = {
    step: 0,
    steps: 10,
    timestep: sampler.timesteps()[0],
    trainSteps: 1000,
    context: ctx,
    sampler,
  };
  return { e, latents };
}

Deno.test("control baselines: fn_initno's parametrisation, Adam and KL loop (replay)", async () => {
  const model = quadraticModel();
  const { e, latents } = await firstEvent(model, 4);
  const tokens = isacSpecFor(model, PROMPT).isac.tokens;
  const r = await initNoOptimise(model, e, latents, { tokens, last: 9 }, {
    maxStep: 8,
    tauCrossAttn: -1,
  });
  // Replay: params [logσ²; μ], ∇_z = 2z, Adam(lr 1e-2, eps 1e-3), then KL steps while KL > 1e-3.
  const n = latents.data.length;
  let params: Float32Array = new Float32Array(2 * n);
  const state = adamInit(2 * n);
  const z = () => latents.data.map((v, j) => v * Math.exp(0.5 * params[j]) + params[n + j]);
  let klSteps = 0;
  for (let it = 0; it < 8; it++) {
    const zz = z();
    const g = new Float32Array(2 * n);
    for (let j = 0; j < n; j++) {
      g[j] = 2 * zz[j] * latents.data[j] * 0.5 * Math.exp(0.5 * params[j]);
      g[n + j] = 2 * zz[j];
    }
    params = adamStep(params, g, state, 1e-2, { eps: 1e-3 });
    let kl = initNoKl(params.subarray(0, n), params.subarray(n));
    while (kl.value > 1e-3) {
      const gk = new Float32Array(2 * n);
      gk.set(kl.dLogVar);
      gk.set(kl.dMu, n);
      params = adamStep(params, gk, state, 1e-2, { eps: 1e-3 });
      klSteps++;
      kl = initNoKl(params.subarray(0, n), params.subarray(n));
    }
    assert.ok(r.iterations[it].kl <= 1e-3, `KL after iteration ${it}: ${r.iterations[it].kl}`);
  }
  assert.equal(r.iterations.length, 8);
  assert.equal(r.succeeded, false);
  assert.ok(klSteps > 0, "the KL loop ran");
  assert.equal(r.iterations.reduce((s, l) => s + l.klSteps, 0), klSteps);
  assert.deepEqual([...r.latents.data], [...z()]);
  assert.ok(r.latents.data.some((v, j) => v !== latents.data[j]), "the noise moved");
  // The score is L_ca + L_sa of the last evaluation (+1 when L_sa ≤ 1e-6).
  const last = r.iterations[7];
  near(r.score, last.crossAttn + (last.selfAttn <= 1e-6 ? last.selfAttn + 1 : last.selfAttn));
});

function near(a: number, b: number) {
  assert.ok(Math.abs(a - b) < 1e-12, `${a} vs ${b}`);
}

Deno.test("control baselines: success at the first iteration keeps the noise", async () => {
  const { model } = fakeModel();
  const { e, latents } = await firstEvent(model, 2);
  const tokens = isacSpecFor(model, PROMPT).isac.tokens;
  const r = await initNoOptimise(model, e, latents, { tokens }, {
    tauCrossAttn: 2,
    tauSelfAttn: 2,
  });
  assert.equal(r.succeeded, true);
  assert.equal(r.iterations.length, 1);
  assert.deepEqual([...r.latents.data], [...latents.data]);
});

Deno.test("control baselines: InitNO rounds, pool order and the rerun of the best round", async () => {
  const { model } = fakeModel();
  const seed = 11;
  const h = initNo(model, PROMPT, {
    seed,
    maxRound: 3,
    roundSteps: 2,
    rerunSteps: 4,
    noise: { tauCrossAttn: -1 },
    maxIterToAlter: 0,
  });
  await sampleLatents(model, PROMPT, { seed, steps: 4, guidance: 1, adjust: h.adjust });
  const rounds = h.rounds[0];
  assert.equal(rounds.length, 4, "3 rounds and the rerun");
  assert.deepEqual(rounds.slice(0, 3).map((r) => r.round), [0, 1, 2]);
  assert.ok(rounds.slice(0, 3).every((r) => !r.succeeded && r.iterations.length === 2));
  const best = rounds.slice(0, 3).reduce((a, b) => (b.score < a.score ? b : a));
  assert.equal(rounds[3].rerun, true);
  assert.equal(rounds[3].round, best.round, "the rerun starts from the best round's noise");
  assert.equal(rounds[3].iterations.length, 4);
  // The rerun starts from that round's original noise: its first evaluation is that round's first.
  assert.equal(rounds[3].iterations[0].value, best.iterations[0].value);
  // Round 0's noise is the sampler's own latent; the others continue the stream.
  const noises = initNoNoise([1, 1, 4, 4], seed, 0, 3);
  assert.deepEqual([...noises[0].data], [...initialLatents([1, 4, 4], seed, 1).data]);
  assert.notDeepEqual([...noises[1].data], [...noises[0].data]);

  // A success stops the rounds and skips the rerun.
  const ok = initNo(model, PROMPT, {
    seed,
    noise: { tauCrossAttn: 2, tauSelfAttn: 2 },
    maxIterToAlter: 0,
  });
  await sampleLatents(model, PROMPT, { seed, steps: 2, guidance: 1, adjust: ok.adjust });
  assert.equal(ok.rounds[0].length, 1);
  assert.equal(ok.rounds[0][0].succeeded, true);
});

Deno.test("control baselines: InitNO denoising refines only at its steps, updates only before maxIterToAlter", async () => {
  const { model } = fakeModel();
  const h = initNo(model, PROMPT, {
    seed: 0,
    skipNoise: true,
    maxIterToAlter: 3,
    refineSteps: [1],
    refineCross: -1,
    refineThreshold: 2, // loop while L_ca > −1: always, so it runs maxRefinementSteps times
    maxRefinementSteps: 2,
  });
  await sampleLatents(model, PROMPT, { seed: 0, steps: 6, guidance: 1, adjust: h.adjust });
  assert.deepEqual(h.steps.map((s) => s.step), [0, 1, 2]);
  assert.deepEqual(h.steps.map((s) => s.refinements), [0, 2, 0]);
  assert.equal(h.rounds.length, 0, "skipNoise");
});

Deno.test("control baselines: InitNO names a seed that is not the sampler's", async () => {
  const { model } = fakeModel();
  const h = initNo(model, PROMPT, { seed: 5, maxIterToAlter: 0 });
  await rejectsNaming(
    () => sampleLatents(model, PROMPT, { seed: 6, steps: 2, guidance: 1, adjust: h.adjust }),
    "seed",
  );
});

Deno.test("control baselines: SynGen subtrees, outside pool, update rule and window", async () => {
  const { model } = fakeModel();
  const spec = isacSpecFor(model, PROMPT);
  // <sot> a red circle and a blue square <eot>
  assert.deepEqual(synGenSubtrees(spec.targets), [
    { noun: [3], modifiers: [[2]] },
    { noun: [7], modifiers: [[6]] },
  ]);
  assert.deepEqual(promptColumns(model, PROMPT), [1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(synGenSubtrees(isacSpecFor(model, "a circle and a blue square").targets), [
    { noun: [6], modifiers: [[5]] },
  ]);
  assert.equal(
    synGenSubtrees(isacSpecFor(model, "a circle and a blue square").targets, true).length,
    2,
    "includeEntities adds the bare noun",
  );

  const h = synGen(model, PROMPT, { interventionSteps: 2 });
  const sampler = defaultSampler(model, 4);
  const ctx = await model.encodeText([PROMPT]);
  const x = initialLatents(model.info.latentShape, 3, 1);
  const e = {
    step: 0,
    steps: 4,
    timestep: sampler.timesteps()[0],
    trainSteps: 1000,
    latents: x,
    context: ctx,
    sampler,
  };
  const out = await h.adjust(e);
  const opts = { subtrees: h.subtrees, promptTokens: h.promptTokens };
  const g = await latentGrad(model, x, e.timestep, ctx, (m) => synGenLoss(m, opts));
  assert.ok(g.values[0] !== 0);
  out.data.forEach((v, j) => assert.ok(Math.abs(v - (x.data[j] - 20 * g.grad.data[j])) < 1e-6));
  assert.equal(h.log[0].value, g.values[0]);
  // Outside the window the latents pass through untouched.
  assert.equal(await h.adjust({ ...e, step: 2 }), x);
  // The loss the hook reads is the maps' (same accumulation as latentGrad's).
  const res = await model.denoise(x, e.timestep, ctx, { taps: true });
  assert.equal(synGenLoss(accumulateMaps(res.taps![0]), opts).value, g.values[0]);
});
