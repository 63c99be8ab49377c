/**
 * ISAC latent optimisation (Algorithm 1) on a tiny linear stand-in for a denoiser whose taps'
 * Q and K are the latent itself (so its VJP is exact and cheap): the latent gradient of the ISAC
 * loss against central finite differences (K-means assignment, foreground and maximising pairs
 * checked unchanged), the chain rule through a sampler's input scaling, the η update, step
 * selection, and the NaN/Inf paths (throw by default, "stop" keeps the last good latent).
 */
import assert from "node:assert/strict";
import { accumulateMaps } from "../lib/attention/accumulate.ts";
import type { AttentionTap, TapGrad } from "../lib/attention/types.ts";
import {
  chainAdjust,
  isacMapsLoss,
  isacOptimiser,
  optimiseLatent,
} from "../lib/control/optimise_latent.ts";
import { latentGrad, NonFiniteLossError } from "../lib/control/latent_grad.ts";
import type { PromptSpec } from "../lib/control/isac_spec.ts";
import { AttnkitError } from "../lib/errors.ts";
import { isacLoss, type IsacSpec, type IsacWeights } from "../lib/isac/loss.ts";
import type { PromptTokenizer } from "../lib/prompt/types.ts";
import { gaussian, mulberry32 } from "../lib/random.ts";
import type { DiffusionModel } from "../lib/runtime/model.ts";
import type { AdjustEvent } from "../lib/runtime/sample.ts";
import { defaultSampler } from "../lib/runtime/sample.ts";
import type { Sampler } from "../lib/samplers/sampler.ts";
import { type Tensor, tensor } from "../lib/tensor.ts";

const C = 2, H = 4, W = 4, N = H * W, L = 4;

/** Item b's taps: q = k = the latent's pixels as tokens (self), q = pixels, k = text (cross). */
function tapsOf(x: Float32Array, b: number, ctx: Float32Array): AttentionTap[] {
  const q = new Float32Array(N * C);
  for (let p = 0; p < N; p++) for (let c = 0; c < C; c++) q[p * C + c] = x[b * C * N + c * N + p];
  return [
    { kind: "self", q: tensor([1, N, C], q), k: tensor([1, N, C], q.slice()), size: [H, W] },
    {
      kind: "cross",
      q: tensor([1, N, C], q.slice()),
      k: tensor([1, L, C], ctx.slice(b * L * C, (b + 1) * L * C)),
      size: [H, W],
    },
  ];
}

/** A linear fake model; `calls` counts denoise and gradient calls. */
function fakeModel(): DiffusionModel & { calls: { denoise: number; gradient: number } } {
  const calls = { denoise: 0, gradient: 0 };
  return {
    calls,
    info: {
      name: "fake",
      latentShape: [C, H, W],
      imageSize: [H, W],
      scaleFactor: 1,
      trainSteps: 1000,
      betaSchedule: { kind: "scaled_linear", betaStart: 0.00085, betaEnd: 0.012 },
      prediction: "epsilon",
    },
    tokenizer: {} as PromptTokenizer,
    encodeText(prompts) {
      // Text keys with some contrast, deterministic per prompt length.
      const g = gaussian(mulberry32(prompts[0].length + 11), L * C).map((v) => 2 * v);
      const out = new Float32Array(prompts.length * L * C);
      prompts.forEach((_, i) => out.set(g, i * L * C));
      return Promise.resolve(tensor([prompts.length, L, C], out));
    },
    denoise(latents, _t, context, o) {
      calls.denoise++;
      const b = latents.shape[0];
      const out = tensor(latents.shape, latents.data.map((v) => 0.1 * v));
      if (!o?.taps) return Promise.resolve({ out });
      const taps = Array.from({ length: b }, (_, i) => tapsOf(latents.data, i, context.data));
      return Promise.resolve({ out, taps });
    },
    gradient(latents, _t, _context, tapGrads: readonly TapGrad[][]) {
      calls.gradient++;
      const g = new Float32Array(latents.data.length);
      tapGrads.forEach(([self, cross], b) => {
        for (let p = 0; p < N; p++) {
          for (let c = 0; c < C; c++) {
            const j = p * C + c;
            g[b * C * N + c * N + p] = self.dq.data[j] + self.dk.data[j] + cross.dq.data[j];
          }
        }
      });
      return Promise.resolve(tensor(latents.shape, g));
    },
    decode(latents) {
      return Promise.resolve(latents);
    },
    release() {
      return Promise.resolve();
    },
  };
}

const SPEC: IsacSpec = { tokens: [1, 2], counts: [1, 1], seed: 0 };
const PROMPT_SPEC: PromptSpec = { targets: [], isac: SPEC };
const W_BOTH: IsacWeights = { ins: 0.6, cls: 0.4 };

function latent(seed: number, b = 1): Tensor {
  return tensor([b, C, H, W], gaussian(mulberry32(seed), b * C * N));
}

async function context(model: DiffusionModel, b = 1): Promise<Tensor> {
  const one = await model.encodeText(["a prompt"]);
  const out = new Float32Array(b * one.data.length);
  for (let i = 0; i < b; i++) out.set(one.data, i * one.data.length);
  return tensor([b, L, C], out);
}

/** ISAC loss of item b and the piecewise-constant structure that must not change under FD. */
function lossAt(x: Float32Array, ctx: Tensor, b: number, w: IsacWeights) {
  const r = isacLoss(accumulateMaps(tapsOf(x, b, ctx.data)), SPEC, w);
  const key = JSON.stringify([
    [...r.foreground],
    [...r.assign],
    r.insPair,
    r.clsPair,
  ]);
  return { value: r.value, key };
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function unitDirection(seed: number, n: number): Float32Array {
  const v = gaussian(mulberry32(seed), n);
  const norm = Math.sqrt(dot(v, v));
  return v.map((x) => x / norm);
}

function event(x: Tensor, ctx: Tensor, sampler: Sampler, step = 3, steps = 10): AdjustEvent {
  return { step, steps, timestep: 700, trainSteps: 1000, latents: x, context: ctx, sampler };
}

Deno.test("control optimise: latentGrad of the ISAC loss matches central differences", async () => {
  const model = fakeModel();
  const x = latent(5, 2);
  const ctx = await context(model, 2);
  const r = await latentGrad(model, x, 500, ctx, isacMapsLoss(SPEC, W_BOTH));
  assert.equal(model.calls.gradient, 1);
  assert.equal(r.values.length, 2);
  const h = 1e-3;
  let checked = 0;
  for (const seed of [1, 2, 3, 4]) {
    const v = unitDirection(seed, x.data.length);
    const plus = x.data.map((a, i) => a + h * v[i]);
    const minus = x.data.map((a, i) => a - h * v[i]);
    let numeric = 0;
    let fixed = true;
    for (let b = 0; b < 2; b++) {
      const base = lossAt(x.data, ctx, b, W_BOTH);
      const p = lossAt(plus, ctx, b, W_BOTH);
      const m = lossAt(minus, ctx, b, W_BOTH);
      fixed &&= p.key === base.key && m.key === base.key;
      numeric += (p.value - m.value) / (2 * h);
      assert.ok(Math.abs(base.value - r.values[b]) < 1e-6);
    }
    if (!fixed) continue; // the K-means assignment moved: not a smooth direction
    const analytic = dot(r.grad.data, v);
    assert.ok(
      Math.abs(analytic - numeric) <= 2e-2 * Math.max(Math.abs(numeric), 1e-2),
      `direction ${seed}: ⟨grad, v⟩ = ${analytic}, central difference ${numeric}`,
    );
    checked++;
  }
  assert.ok(checked >= 3, `only ${checked} of 4 directions kept the assignment fixed`);
});

Deno.test("control optimise: one hook step is x − η·∇x L_t through the sampler's input scale", async () => {
  const model = fakeModel();
  const x = latent(9);
  const ctx = await context(model);
  // An Euler-like sampler: the denoiser sees 0.5·x, so ∇x L = 0.5 · ∇x_in L.
  const base = defaultSampler(model, 10);
  const sampler: Sampler = { ...base, scaleInput: (d) => d.map((v) => 0.5 * v) };
  const eta = 0.05;
  const opt = isacOptimiser(model, "", { eta, spec: PROMPT_SPEC, schedule: () => W_BOTH });
  const next = await opt.adjust(event(x, ctx, sampler));
  assert.equal(opt.log.length, 1);
  const g = x.data.map((v, i) => (v - next.data[i]) / eta);
  const h = 1e-3;
  const v = unitDirection(21, x.data.length);
  const scaled = (d: Float32Array) => d.map((a) => 0.5 * a);
  const p = lossAt(scaled(x.data.map((a, i) => a + h * v[i])), ctx, 0, W_BOTH);
  const m = lossAt(scaled(x.data.map((a, i) => a - h * v[i])), ctx, 0, W_BOTH);
  const numeric = (p.value - m.value) / (2 * h);
  const analytic = dot(g, v);
  assert.ok(
    Math.abs(analytic - numeric) <= 3e-2 * Math.max(Math.abs(numeric), 1e-2),
    `⟨(x − x̃)/η, v⟩ = ${analytic}, central difference in x-space ${numeric}`,
  );
  const norm = Math.sqrt(dot(g, g));
  assert.ok(Math.abs(opt.log[0].gradNorm[0] - norm) <= 1e-3 * norm + 1e-6);
  assert.equal(opt.log[0].value[0], opt.log[0].ins[0] * 0.6 + opt.log[0].cls[0] * 0.4);
});

Deno.test("control optimise: steps outside `at` pass through; optimiseLatent runs the hook", async () => {
  const model = fakeModel();
  const res = await optimiseLatent(model, "three things", {
    seed: 3,
    steps: 6,
    guidance: 1,
    spec: PROMPT_SPEC,
    at: [1, 4],
    eta: 0.01,
    progress: false,
  });
  assert.deepEqual(res.log.map((s) => s.step), [1, 4]);
  // 6 sampling calls + one tapped call at each optimised step; 2 VJPs.
  assert.equal(model.calls.denoise, 8);
  assert.equal(model.calls.gradient, 2);
  assert.ok(res.log.every((s) => s.gradNorm[0] > 0 && Number.isFinite(s.value[0])));
  // λ follows the soft schedule: λ_ins = t/T.
  for (const s of res.log) assert.ok(Math.abs(s.weights.ins - s.timestep / 1000) < 1e-12);

  // Composition: a second hook sees ISAC's output.
  const seen: number[] = [];
  const opt = isacOptimiser(model, "", { spec: PROMPT_SPEC, eta: 0.5 });
  const ctx = await context(model);
  const x = latent(4);
  const chained = chainAdjust(opt.adjust, (e) => {
    seen.push(...e.latents.data.slice(0, 2));
    return Promise.resolve(e.latents);
  });
  const out = await chained(event(x, ctx, defaultSampler(model, 10)));
  assert.deepEqual(seen, [...out.data.slice(0, 2)]);
  assert.notDeepEqual([...out.data], [...x.data]);
});

Deno.test("control optimise: a NaN term throws naming step and term, or stops with the option", async (t) => {
  const model = fakeModel();
  const ctx = await context(model);
  const x = latent(2);
  const sampler = defaultSampler(model, 10);
  const nanIns = (maps: Parameters<typeof isacLoss>[0], spec: IsacSpec, w: IsacWeights) => ({
    ...isacLoss(maps, spec, w),
    ins: NaN,
  });
  await t.step("default: throws an AttnkitError naming the step and ins", async () => {
    const opt = isacOptimiser(model, "", { spec: PROMPT_SPEC, loss: nanIns });
    const err = await opt.adjust(event(x, ctx, sampler, 7)).then(
      () => assert.fail("expected a throw"),
      (e) => e,
    );
    assert.ok(err instanceof AttnkitError && err instanceof NonFiniteLossError);
    assert.equal(err.step, 7);
    assert.equal(err.term, "ins");
    assert.match(err.message, /step 7/);
    assert.match(err.message, /ins term is NaN/);
  });
  await t.step("stop: keeps the latent, logs the reason, optimises no later step", async () => {
    let calls = 0;
    const flaky = (maps: Parameters<typeof isacLoss>[0], spec: IsacSpec, w: IsacWeights) => {
      calls++;
      const r = isacLoss(maps, spec, w);
      return calls === 2 ? { ...r, cls: Infinity } : r;
    };
    const opt = isacOptimiser(model, "", { spec: PROMPT_SPEC, loss: flaky, onNonFinite: "stop" });
    const a = await opt.adjust(event(x, ctx, sampler, 0));
    assert.notDeepEqual([...a.data], [...x.data]);
    const b = await opt.adjust(event(a, ctx, sampler, 1));
    assert.equal(b, a, "the last good latent is kept");
    const c = await opt.adjust(event(b, ctx, sampler, 2));
    assert.equal(c, b, "no optimisation after the stop");
    assert.equal(calls, 2);
    assert.equal(opt.stopped()?.term, "cls");
    assert.equal(opt.stopped()?.step, 1);
    assert.deepEqual(opt.log.map((s) => [s.step, s.skipped !== undefined]), [[0, false], [
      1,
      true,
    ]]);
  });
  await t.step("a non-finite map gradient is traced to its term", async () => {
    const badClsGrad = (maps: Parameters<typeof isacLoss>[0], spec: IsacSpec, w: IsacWeights) => {
      const r = isacLoss(maps, spec, w);
      if (w.cls !== 0) r.grad.cross!.data[0] = NaN;
      return r;
    };
    const opt = isacOptimiser(model, "", { spec: PROMPT_SPEC, loss: badClsGrad });
    const err = await opt.adjust(event(x, ctx, sampler, 4)).then(() => undefined, (e) => e);
    assert.ok(err instanceof NonFiniteLossError, String(err));
    assert.equal(err.term, "cls");
    assert.match(err.message, /step 4/);
  });
  await t.step("bad options are AttnkitErrors", () => {
    assert.throws(() => isacOptimiser(model, "", { spec: PROMPT_SPEC, eta: -1 }), AttnkitError);
    assert.throws(
      () => isacOptimiser(model, "", { spec: PROMPT_SPEC, onNonFinite: "skip" as "stop" }),
      AttnkitError,
    );
  });
});
