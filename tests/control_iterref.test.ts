/**
 * IterRef (the step-selection paper's k Adam shifts at a chosen step): the Adam update against
 * torch.optim.Adam on a tiny quadratic (values computed with PyTorch 1.13, not by this code), the
 * closed-form first step, early stopping, the GSN step-size schedule and default step, and the
 * hook acting only at its step. No model is needed.
 */
import assert from "node:assert/strict";
import {
  adamInit,
  adamStep,
  gsnStepSize,
  iterRef,
  ITERREF_TIMESTEP_FRACTION,
  iterRefShifts,
  stepNearest,
} from "../lib/control/iter_ref.ts";
import { NonFiniteLossError } from "../lib/control/latent_grad.ts";
import { AttnkitError } from "../lib/errors.ts";
import type { DiffusionModel } from "../lib/runtime/model.ts";
import { ddim } from "../lib/samplers/ddim.ts";
import { type Tensor, tensor } from "../lib/tensor.ts";

// L(x) = ½ Σ a (x − c)², ∇L = a (x − c).
const A = [1, 4, 0.25, 1];
const CEN = [0, 1, -1, 0];
const X0 = [1, -2, 0.5, 0.0002];
const quadGrad = (x: ArrayLike<number>) => Float32Array.from(A, (a, i) => a * (x[i] - CEN[i]));
const quadLoss = (x: ArrayLike<number>) =>
  A.reduce((s, a, i) => s + 0.5 * a * (x[i] - CEN[i]) ** 2, 0);

/**
 * torch.optim.Adam([x], lr=0.5, eps=1e-3) (β = 0.9, 0.999) on that quadratic, float64:
 * the parameters after steps 1, 2, 3 and the loss before each step.
 */
const TORCH_X = [
  [0.5004995005, -1.500041663195, 0.001329787234, -0.083133333333],
  [0.034925518258, -1.004499508074, -0.482404630291, 0.281919911439],
  [-0.334651260397, -0.517840087017, -0.929456400428, 0.057996938376],
];
const TORCH_LOSS = [18.78125002, 12.754454753824932, 8.10987399072253];

Deno.test("control iterref: adamStep matches torch.optim.Adam and the closed-form first step", () => {
  const state = adamInit(4);
  let x: Float32Array = Float32Array.from(X0);
  // Step 1 by hand: m̂ = g, v̂ = g², so x₁ = x₀ − lr·g / (|g| + eps).
  const g0 = quadGrad(x);
  const byHand = X0.map((v, i) => v - 0.5 * g0[i] / (Math.abs(g0[i]) + 1e-3));
  for (let s = 0; s < 3; s++) {
    assert.ok(Math.abs(quadLoss(x) - TORCH_LOSS[s]) < 1e-5 * TORCH_LOSS[s]);
    x = adamStep(x, quadGrad(x), state, 0.5, { eps: 1e-3 });
    if (s === 0) byHand.forEach((v, i) => assert.ok(Math.abs(x[i] - v) < 1e-6, `hand ${i}`));
    TORCH_X[s].forEach((v, i) =>
      assert.ok(Math.abs(x[i] - v) < 2e-6, `step ${s + 1}, x[${i}] = ${x[i]}, torch ${v}`)
    );
  }
  assert.equal(state.t, 3);
  // Weight decay adds wd·x to the gradient (torch's Adam, not AdamW).
  const a = adamStep(Float32Array.of(2), Float32Array.of(0), adamInit(1), 0.1, {
    weightDecay: 0.5,
  });
  assert.ok(Math.abs(a[0] - (2 - 0.1 * 1 / (1 + 1e-3))) < 1e-6);
  assert.throws(
    () => adamStep(Float32Array.of(1), Float32Array.of(1, 2), adamInit(1), 1),
    AttnkitError,
  );
});

Deno.test("control iterref: iterRefShifts takes k Adam shifts per item and stops at the threshold", async () => {
  // Two items: the torch quadratic, and one already at its optimum (loss 0: never moved).
  const x = tensor([2, 4], [...X0, ...CEN]);
  let calls = 0;
  const gradOf = (t: Tensor, items: readonly number[]) => {
    calls++;
    const per = 4;
    const grad = new Float32Array(t.data.length);
    const values = items.map((_, k) => {
      const xi = t.data.subarray(k * per, (k + 1) * per);
      grad.set(quadGrad(xi), k * per);
      return quadLoss(xi);
    });
    return Promise.resolve({ values, grad: tensor(t.shape, grad) });
  };
  const r = await iterRefShifts(x, gradOf, {
    shifts: 3,
    lr: 0.5,
    threshold: 0,
    adam: { eps: 1e-3 },
  });
  assert.equal(calls, 3);
  TORCH_X[2].forEach((v, i) => assert.ok(Math.abs(r.latents.data[i] - v) < 2e-6));
  assert.deepEqual([...r.latents.data.slice(4)], CEN.map(Math.fround));
  assert.equal(r.items[0].shifts, 3);
  r.items[0].values.forEach((v, s) => assert.ok(Math.abs(v - TORCH_LOSS[s]) < 1e-4));
  assert.equal(r.items[1].shifts, 0);
  assert.deepEqual(r.items[1].values, [0]);
  // A threshold the first item reaches after one shift stops it there.
  const early = await iterRefShifts(x, gradOf, {
    shifts: 10,
    lr: 0.5,
    threshold: 13,
    adam: { eps: 1e-3 },
  });
  assert.equal(early.items[0].shifts, 1);
  TORCH_X[0].forEach((v, i) => assert.ok(Math.abs(early.latents.data[i] - v) < 2e-6));
  await assert.rejects(
    () => iterRefShifts(x, gradOf, { shifts: 1.5, lr: 1, threshold: 0 }),
    AttnkitError,
  );
});

Deno.test("control iterref: GSN step size and the paper's default step", () => {
  // 20·√(linspace(1, 0.5, 50)[i]); step 8 of 50 is the paper's IterRef step (timestep 821).
  assert.ok(Math.abs(gsnStepSize(0, 50) - 20) < 1e-12);
  assert.ok(Math.abs(gsnStepSize(49, 50) - 20 * Math.sqrt(0.5)) < 1e-12);
  assert.ok(Math.abs(gsnStepSize(8, 50) - 20 * Math.sqrt(1 - 0.5 * 8 / 49)) < 1e-12);
  const s50 = ddim({ steps: 50, trainSteps: 1000 });
  const ts = s50.timesteps();
  const i = stepNearest(ts, 1000, ITERREF_TIMESTEP_FRACTION);
  assert.equal(i, 8, `timesteps ${ts.slice(0, 10)}`);
  assert.equal(ts[i], 821);
});

Deno.test("control iterref: the hook shifts only at its step and reports NaN with the step", async () => {
  // A model whose taps are never read: the loss ignores the maps and the gradient comes from
  // the latents, so the hook's bookkeeping is tested without attention.
  let denoise = 0;
  const model = {
    info: { trainSteps: 1000 },
    denoise(latents: Tensor) {
      denoise++;
      const taps = Array.from({ length: latents.shape[0] }, () => [{
        kind: "cross" as const,
        q: tensor([1, 1, 1], [0]),
        k: tensor([1, 1, 1], [0]),
        size: [1, 1] as const,
      }]);
      return Promise.resolve({ out: latents, taps });
    },
    gradient(latents: Tensor) {
      return Promise.resolve(tensor(latents.shape, latents.data.map((v) => 2 * v)));
    },
  } as unknown as DiffusionModel;
  const sampler = ddim({ steps: 50, trainSteps: 1000 });
  const ts = sampler.timesteps();
  const x = tensor([1, 1, 1, 2], [1, -1]);
  const ctx = tensor([1, 1, 1], [0]);
  const hook = iterRef(model, {
    shifts: 4,
    loss: () => ({ value: 1, grad: { cross: tensor([1, 1], [1]) } }),
  });
  // Expected: 4 Adam steps (checked against torch above) on ∇ = 2x with the step-8 learning rate.
  let want: Float32Array = x.data;
  const state = adamInit(2);
  for (let k = 0; k < 4; k++) {
    want = adamStep(
      want,
      want.map((v) => 2 * v),
      state,
      gsnStepSize(8, 50),
    );
  }
  for (let s = 0; s < 12; s++) {
    const e = {
      step: s,
      steps: 50,
      timestep: ts[s],
      trainSteps: 1000,
      latents: x,
      context: ctx,
      sampler,
    };
    const out = await hook.adjust(e);
    if (s !== 8) assert.equal(out, x);
    else assert.deepEqual([...out.data], [...want]);
  }
  assert.equal(denoise, 4);
  assert.deepEqual(hook.log.map((l) => [l.step, l.timestep, l.items[0].shifts]), [[8, 821, 4]]);
  assert.ok(Math.abs(hook.log[0].lr - gsnStepSize(8, 50)) < 1e-12);

  const bad = iterRef(model, { at: [0], loss: () => ({ value: NaN, grad: {} }) });
  const e0 = {
    step: 0,
    steps: 50,
    timestep: ts[0],
    trainSteps: 1000,
    latents: x,
    context: ctx,
    sampler,
  };
  const err = await bad.adjust(e0).then(() => undefined, (e) => e);
  assert.ok(err instanceof NonFiniteLossError);
  assert.match(err.message, /step 0, item 0: the value term is NaN/);
});
