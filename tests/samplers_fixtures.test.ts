/**
 * Samplers against values computed independently in numpy by
 * tests/fixtures/make_sampler_fixtures.py (regenerate with /usr/bin/python3 on that script).
 */
import assert from "node:assert/strict";
import {
  alphasCumprod,
  betas,
  cfg,
  ddim,
  ddpm,
  euler,
  flowMatch,
  noiseSchedule,
  type Prediction,
  type Sampler,
  spacedTimesteps,
  type TimestepSpacing,
} from "../lib/samplers/mod.ts";
import schedules from "./fixtures/samplers/schedules.json" with { type: "json" };
import ddimFix from "./fixtures/samplers/ddim.json" with { type: "json" };
import ddpmFix from "./fixtures/samplers/ddpm.json" with { type: "json" };
import eulerFix from "./fixtures/samplers/euler.json" with { type: "json" };
import flowFix from "./fixtures/samplers/flow.json" with { type: "json" };
import cfgFix from "./fixtures/samplers/cfg.json" with { type: "json" };

const RTOL = 1e-5;

/** |a − e| ≤ RTOL·|e| + RTOL·1e-2·max|e| for every element. */
function assertClose(actual: ArrayLike<number>, expected: readonly number[], label: string): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  let scale = 0;
  for (const e of expected) scale = Math.max(scale, Math.abs(e));
  for (let i = 0; i < expected.length; i++) {
    const tol = RTOL * Math.abs(expected[i]) + RTOL * 1e-2 * scale + 1e-12;
    const diff = Math.abs(actual[i] - expected[i]);
    if (!(diff <= tol)) {
      assert.fail(`${label}[${i}]: got ${actual[i]}, expected ${expected[i]} (|diff| ${diff})`);
    }
  }
}

/** The fixtures' pseudo-model: 0.1·x + 0.05·sin(x·t/1000), stored as float32. */
function model(x: Float32Array, t: number): Float32Array {
  return x.map((v) => 0.1 * v + 0.05 * Math.sin((v * t) / 1000));
}

interface Run {
  x: number[];
  timesteps: number[];
  states: number[][];
  noise?: number[][] | null;
  x0?: number[][];
  inputs?: number[][];
}

/** Runs `sampler` from the fixture's x and compares every state (and x̂₀, model input). */
function replay(sampler: Sampler, run: Run, label: string): void {
  const ts = sampler.timesteps();
  assertClose(ts, run.timesteps, `${label} timesteps`);
  let x: Float32Array = Float32Array.from(run.x);
  for (let i = 0; i < ts.length; i++) {
    const input = sampler.scaleInput(x, i);
    if (run.inputs) assertClose(input, run.inputs[i], `${label} input ${i}`);
    const out = model(input, ts[i]);
    if (run.x0) assertClose(sampler.predictX0(x, out, i), run.x0[i], `${label} x0 ${i}`);
    const noise = run.noise ? Float32Array.from(run.noise[i]) : undefined;
    x = sampler.step(x, out, i, noise);
    assertClose(x, run.states[i], `${label} state ${i}`);
  }
}

Deno.test("noise schedules match numpy", async (t) => {
  await t.step("scaled_linear (SD) betas and alphas_cumprod", () => {
    const b = betas();
    const a = alphasCumprod(b);
    assertClose(schedules.indices.map((i) => b[i]), schedules.scaled_linear.betas, "betas");
    assertClose(
      schedules.indices.map((i) => a[i]),
      schedules.scaled_linear.alphas_cumprod,
      "alphas_cumprod",
    );
  });
  await t.step("linear 1e-4..0.02 (DDPM paper)", () => {
    const opts = { betaSchedule: "linear", betaStart: 1e-4, betaEnd: 0.02 } as const;
    const b = betas(opts);
    const a = noiseSchedule(opts);
    const fix = schedules["linear_1e-4_0.02"];
    assertClose(schedules.indices.map((i) => b[i]), fix.betas, "betas");
    assertClose(schedules.indices.map((i) => a[i]), fix.alphas_cumprod, "alphas_cumprod");
  });
  await t.step("timestep spacings", () => {
    const table: Record<string, number[]> = schedules.timesteps;
    for (const [key, expected] of Object.entries(table)) {
      const [spacing, n] = key.split("/");
      const got = spacedTimesteps(Number(n), { spacing: spacing as TimestepSpacing });
      assert.deepEqual(got, expected, key);
    }
  });
});

Deno.test("DDIM matches numpy (eta 0 / eps, v; eta 0.5 trailing; eta 1 linspace v)", () => {
  for (const run of ddimFix) {
    const sampler = ddim({
      steps: run.steps,
      eta: run.eta,
      prediction: run.prediction as Prediction,
      spacing: run.spacing as TimestepSpacing,
    });
    replay(sampler, run, `ddim ${run.spacing}/${run.steps} eta ${run.eta} ${run.prediction}`);
  }
});

Deno.test("DDPM matches numpy (fixedSmall eps, fixedLarge v)", () => {
  for (const run of ddpmFix) {
    const sampler = ddpm({
      steps: run.steps,
      prediction: run.prediction as Prediction,
      variance: run.variance as "fixedSmall" | "fixedLarge",
    });
    replay(sampler, run, `ddpm ${run.steps} ${run.prediction} ${run.variance}`);
  }
});

Deno.test("Euler matches numpy (sigmas, c_in inputs, x0, states; Karras spacing)", () => {
  for (const run of eulerFix) {
    const sampler = euler({
      steps: run.steps,
      spacing: run.spacing as TimestepSpacing,
      prediction: run.prediction as Prediction,
      karras: run.karras,
    });
    const label = `euler ${run.spacing}/${run.steps} ${run.prediction}${
      run.karras ? " karras" : ""
    }`;
    assertClose([sampler.initNoiseSigma], [run.init_noise_sigma], `${label} initNoiseSigma`);
    replay(sampler, run, label);
  }
});

Deno.test("flow-matching Euler matches numpy (shift 3 and 1)", () => {
  for (const run of flowFix) {
    const sampler = flowMatch({ steps: run.steps, shift: run.shift });
    replay(sampler, run, `flow ${run.steps} shift ${run.shift}`);
  }
});

Deno.test("cfg matches numpy", () => {
  const out = cfg(Float32Array.from(cfgFix.uncond), Float32Array.from(cfgFix.cond), cfgFix.scale);
  assertClose(out, cfgFix.out, "cfg");
});
