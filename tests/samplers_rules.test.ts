/**
 * Sampler step rules checked by algebra that holds independently of the code (a model that
 * predicts the exact noise of a known x₀ must land on the forward process at the next level),
 * and the argument errors.
 */
import assert from "node:assert/strict";
import { AttnkitError } from "../lib/errors.ts";
import {
  cfg,
  ddim,
  ddimStep,
  ddpm,
  euler,
  eulerInputScale,
  flowMatch,
  noiseSchedule,
  predictX0,
  type Sampler,
  spacedTimesteps,
  x0FromV,
} from "../lib/samplers/mod.ts";

const N = 72; // a 2×4×3×3 latent

/** Deterministic values in [−2, 2] from a seed (no Math.random: tests must replay). */
function values(seed: number, n = N): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32) * 4 - 2;
  });
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function throwsNaming(fn: () => unknown, argument: string, pattern?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof AttnkitError, `expected AttnkitError, got ${e}`);
    assert.equal(e.argument, argument);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

const x0 = values(1);
const eps = values(2);

Deno.test("DDIM eta=0 with the exact noise lands on the forward process at the next level", () => {
  const table = noiseSchedule();
  const s = ddim({ steps: 20 });
  const ts = s.timesteps();
  const i = 5;
  const a = table[ts[i]], ap = table[ts[i + 1]];
  const xt = x0.map((v, k) => Math.sqrt(a) * v + Math.sqrt(1 - a) * eps[k]);
  const want = x0.map((v, k) => Math.sqrt(ap) * v + Math.sqrt(1 - ap) * eps[k]);
  assert.ok(maxDiff(s.step(xt, eps, i), want) < 1e-5);
  assert.ok(maxDiff(s.predictX0(xt, eps, i), x0) < 1e-5);
  // the same with the v a v-model would predict
  const v = eps.map((e, k) => Math.sqrt(a) * e - Math.sqrt(1 - a) * x0[k]);
  const sv = ddim({ steps: 20, prediction: "v" });
  assert.ok(maxDiff(sv.step(xt, v, i), want) < 1e-5);
  assert.ok(maxDiff(x0FromV(xt, v, a), x0) < 1e-5);
  assert.ok(maxDiff(predictX0(xt, eps, a), x0) < 1e-5);
});

Deno.test("DDIM eta>0: the added noise has the DDIM paper's sigma", () => {
  const a = 0.3, ap = 0.6, eta = 0.7;
  const z = values(3);
  const zero = new Float32Array(N);
  const withZ = ddimStep(x0, eps, { alphaBar: a, alphaBarPrev: ap, eta }, z);
  const withoutZ = ddimStep(x0, eps, { alphaBar: a, alphaBarPrev: ap, eta }, zero);
  const sigma = eta * Math.sqrt((1 - ap) / (1 - a)) * Math.sqrt(1 - a / ap);
  const ratio = (withZ[7] - withoutZ[7]) / z[7];
  assert.ok(Math.abs(ratio - sigma) < 1e-5, `${ratio} vs ${sigma}`);
});

Deno.test("Euler with the exact noise lands on x0 + sigma_next * eps; c_in = 1/sqrt(s^2+1)", () => {
  const s = euler({ steps: 12 });
  const table = noiseSchedule();
  const ts = s.timesteps();
  const i = 3;
  // σ at an integer-free fractional timestep is between its neighbours' table sigmas
  const sig = (t: number) => Math.sqrt((1 - table[t]) / table[t]);
  const lo = sig(Math.floor(ts[i])), hi = sig(Math.ceil(ts[i]));
  const sigma = 1 / s.scaleInput(Float32Array.of(1), i)[0];
  const sigmaI = Math.sqrt(sigma * sigma - 1);
  assert.ok(sigmaI >= lo - 1e-4 && sigmaI <= hi + 1e-4, `${sigmaI} in [${lo}, ${hi}]`);
  assert.ok(Math.abs(eulerInputScale(3) - 1 / Math.sqrt(10)) < 1e-12);
  const next = s.timesteps()[i + 1];
  const sigmaNext = sig(Math.floor(next)) +
    (next - Math.floor(next)) * (sig(Math.ceil(next)) - sig(Math.floor(next)));
  const x = x0.map((v, k) => v + sigmaI * eps[k]);
  const want = x0.map((v, k) => v + sigmaNext * eps[k]);
  assert.ok(maxDiff(s.step(x, eps, i), want) < 1e-4);
  // the last step goes to sigma 0: the clean x0
  const last = s.steps - 1;
  const sl = Math.sqrt(1 / s.scaleInput(Float32Array.of(1), last)[0] ** 2 - 1);
  const xl = x0.map((v, k) => v + sl * eps[k]);
  assert.ok(maxDiff(s.step(xl, eps, last), x0) < 1e-5);
  assert.ok(Math.abs(s.initNoiseSigma - Math.sqrt(sig(999) ** 2 + 1)) < 1e-9);
});

Deno.test("flow matching with the exact velocity follows the straight path; ends at x0", () => {
  const s = flowMatch({ steps: 6 });
  const v = eps.map((e, k) => e - x0[k]);
  const sigmas = s.timesteps().map((t) => t / 1000);
  assert.ok(Math.abs(sigmas[0] - 1) < 1e-12, "first sigma is 1 (pure noise)");
  let x: Float32Array = eps.slice();
  for (let i = 0; i < s.steps; i++) x = s.step(x, v, i);
  assert.ok(maxDiff(x, x0) < 1e-5);
  // shift 3 spends more of the steps at high noise than shift 1
  const plain = flowMatch({ steps: 6, shift: 1 }).timesteps();
  assert.ok(s.timesteps()[3] > plain[3]);
});

Deno.test("DDPM: deterministic given noise, noise required, last step adds none", () => {
  const s = ddpm({ steps: 10 });
  const z = values(5);
  assert.deepEqual(s.step(x0, eps, 2, z), s.step(x0, eps, 2, z));
  throwsNaming(() => s.step(x0, eps, 2), "noise");
  const a = s.step(x0, eps, 9, z), b = s.step(x0, eps, 9);
  assert.deepEqual(a, b);
  // last step with alpha_prev = 1 returns x0 exactly
  const table = noiseSchedule();
  const at = table[s.timesteps()[9]];
  const xt = x0.map((v, k) => Math.sqrt(at) * v + Math.sqrt(1 - at) * eps[k]);
  assert.ok(maxDiff(s.step(xt, eps, 9), x0) < 1e-5);
});

Deno.test("cfg: scale 0 = uncond, 1 = cond, linear in between", () => {
  const u = values(6), c = values(7);
  assert.deepEqual(cfg(u, c, 0), u);
  assert.ok(maxDiff(cfg(u, c, 1), c) < 1e-6);
  const half = cfg(u, c, 0.5);
  assert.ok(Math.abs(half[3] - (u[3] + c[3]) / 2) < 1e-6);
  throwsNaming(() => cfg(u, values(8, 10), 7.5), "cond", /72 values/);
});

Deno.test("argument errors name the argument", async (t) => {
  const samplers: Sampler[] = [
    ddim({ steps: 4 }),
    ddpm({ steps: 4 }),
    euler({ steps: 4 }),
    flowMatch({ steps: 4 }),
  ];
  await t.step("step index past the schedule -> step", () => {
    for (const s of samplers) {
      throwsNaming(() => s.step(x0, eps, 4, values(9)), "step", /outside the 4-step schedule/);
      throwsNaming(() => s.step(x0, eps, -1, values(9)), "step");
      throwsNaming(() => s.scaleInput(x0, 4), "step");
      throwsNaming(() => s.predictX0(x0, eps, 1.5), "step");
    }
  });
  await t.step("model output of the wrong size -> modelOut", () => {
    for (const s of samplers) {
      throwsNaming(() => s.step(x0, values(1, 10), 0, values(9)), "modelOut");
    }
  });
  await t.step("timesteps(n) with another n -> steps", () => {
    assert.equal(samplers[0].timesteps(4).length, 4);
    throwsNaming(() => samplers[0].timesteps(50), "steps", /built for 4 steps/);
  });
  await t.step("schedules outside the training range -> steps", () => {
    throwsNaming(() => spacedTimesteps(1000), "steps", /t = 1000/);
    throwsNaming(() => spacedTimesteps(0), "steps");
    throwsNaming(() => ddim({ steps: 2.5 }), "steps");
  });
  await t.step("eta > 0 without noise -> noise", () => {
    throwsNaming(() => ddim({ steps: 4, eta: 1 }).step(x0, eps, 0), "noise");
  });
});
