/**
 * Scheduler configs → samplers, against diffusers' own schedulers: timesteps, sigmas, ᾱ, initial
 * noise σ and whole sampling runs recorded by tests/fixtures/make_scheduler_config_fixtures.py
 * (regenerate with the pyenv python3 that has diffusers). Also field-forms F1 on the HF-layout
 * loader, and every refusal naming its key.
 */
import assert from "node:assert/strict";
import { AttnkitError, defaultSampler, loadSd15Model, sampleLatents, samplers } from "../mod.ts";

const { ddim, resolveSchedulerConfig, samplerFromConfig, scheduleFromConfig, spacedTimesteps } =
  samplers;
type Sampler = samplers.Sampler;
import fixture from "./fixtures/scheduler_configs.json" with { type: "json" };

interface Schedule {
  steps: number;
  timesteps: number[];
  init_noise_sigma: number;
  sigmas?: number[];
  alphas_cumprod?: number[];
}
interface Run {
  steps: number;
  x: number[];
  inputs: number[][];
  states: number[][];
  noise: (number[] | null)[];
}
interface Case {
  name: string;
  config: Record<string, unknown>;
  scale: number;
  eta: number;
  set: { mu?: number; image_seq_len?: number; flux_sigmas?: boolean };
  schedules: Schedule[];
  run?: Run;
}
const cases = fixture.cases as unknown as Case[];
const ITEM = fixture.shape.slice(1).reduce((a, b) => a * b, 1);

/**
 * |a − e| ≤ rtol·|e| + rtol·max|e| + abs + 1e-9 elementwise. diffusers computes in float32, so
 * its σ near t = 0 carries float32 cancellation (1 − ᾱ with ᾱ ≈ 1: ~1e-4 relative) and a step
 * from a huge latent (cosine schedule: σ_max ≈ 2·10⁴) a few float32 ulps of that latent (`abs`).
 */
function assertClose(
  actual: ArrayLike<number>,
  expected: readonly number[],
  label: string,
  rtol = 2e-5,
  abs = 0,
) {
  assert.equal(actual.length, expected.length, `${label}: length`);
  let scale = 0;
  for (const e of expected) scale = Math.max(scale, Math.abs(e));
  for (let i = 0; i < expected.length; i++) {
    const diff = Math.abs(actual[i] - expected[i]);
    if (!(diff <= rtol * Math.abs(expected[i]) + rtol * scale + abs + 1e-9)) {
      assert.fail(`${label}[${i}]: got ${actual[i]}, expected ${expected[i]} (|diff| ${diff})`);
    }
  }
}

function numpyLinspace(a: number, b: number, n: number): number[] {
  const step = (b - a) / (n - 1);
  return Array.from({ length: n }, (_, i) => (i === n - 1 ? b : i * step + a));
}

function options(c: Case, n: number) {
  return {
    eta: c.eta,
    itemSize: ITEM,
    mu: c.set.mu,
    imageSeqLen: c.set.image_seq_len,
    sigmas: c.set.flux_sigmas ? (n === 1 ? [1] : numpyLinspace(1, 1 / n, n)) : undefined,
  };
}

Deno.test("scheduler configs: timesteps, sigmas, ᾱ and initial σ equal diffusers'", async (t) => {
  for (const c of cases) {
    await t.step(c.name, () => {
      for (const ref of c.schedules) {
        const n = ref.steps, label = `${c.name} n=${n}`;
        const s = scheduleFromConfig(c.config, n, options(c, n));
        let want = ref.timesteps, sigmas = ref.sigmas;
        if (want.length === n + 1) {
          // numpy's arange gave diffusers an extra trailing step at t = −1 (module doc); attnkit
          // keeps n steps and ends at σ = 0.
          assert.equal(want[n], -1, `${label}: diffusers' extra step`);
          want = want.slice(0, n);
          if (sigmas) {
            assert.equal(s.sigmas![n], 0);
            sigmas = sigmas.slice(0, n);
          }
        }
        assertClose(s.timesteps, want, `${label} timesteps`);
        if (sigmas) {
          assertClose(
            s.sigmas!.slice(0, sigmas.length),
            sigmas.slice(0, n + 1),
            `${label} σ`,
            1e-4,
          );
        }
        if (ref.alphas_cumprod && s.alphaBar) {
          assertClose(s.alphaBar, ref.alphas_cumprod.slice(0, n), `${label} ᾱ`, 1e-4);
        }
        assertClose([s.initNoiseSigma], [ref.init_noise_sigma], `${label} init σ`, 1e-4);
      }
    });
  }
});

/** The fixtures' pseudo-model a·x + 0.05·sin(x·t/1000), as float32. */
function model(x: Float32Array, t: number, a: number): Float32Array {
  return x.map((v) => a * v + 0.05 * Math.sin((v * t) / 1000));
}

function replay(c: Case, sampler: Sampler) {
  const run = c.run!;
  const ts = sampler.timesteps();
  let x: Float32Array = Float32Array.from(run.x);
  for (let i = 0; i < run.steps; i++) {
    const xin = sampler.scaleInput(x, i);
    assertClose(xin, run.inputs[i], `${c.name} input ${i}`, 1e-4);
    const out = model(xin, ts[i], c.scale);
    const z = run.noise[i];
    const big = x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    x = sampler.step(x, out, i, z ? Float32Array.from(z) : undefined);
    assertClose(x, run.states[i], `${c.name} state ${i}`, 1e-4, 5e-7 * big);
  }
}

Deno.test("scheduler configs: whole sampling runs equal diffusers' step by step", async (t) => {
  for (const c of cases.filter((c) => c.run)) {
    await t.step(c.name, () => {
      const sampler = samplerFromConfig(c.config, c.run!.steps, options(c, c.run!.steps));
      assert.equal(sampler.steps, c.run!.steps);
      replay(c, sampler);
    });
  }
});

Deno.test("field-forms F1: a turbo-style trailing Euler config on the HF-layout loader", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    const src = new URL("./fixtures/hf_tiny/", import.meta.url).pathname;
    const copy = async (from: string, to: string) => {
      await Deno.mkdir(to, { recursive: true });
      for await (const e of Deno.readDir(from)) {
        if (e.isDirectory) await copy(`${from}/${e.name}`, `${to}/${e.name}`);
        else await Deno.copyFile(`${from}/${e.name}`, `${to}/${e.name}`);
      }
    };
    await copy(src, dir);
    const cfgPath = `${dir}/scheduler/scheduler_config.json`;
    const cfg = JSON.parse(await Deno.readTextFile(cfgPath));
    const load = async (over: Record<string, unknown>, scheduler?: string) => {
      await Deno.writeTextFile(cfgPath, JSON.stringify({ ...cfg, ...over }));
      return await loadSd15Model(dir, { imageSize: [64, 64], scheduler });
    };
    await t.step("Euler trailing: 1 step → [999], 4 steps → [999, 749, 499, 249]", async () => {
      const m = await load({ _class_name: "EulerDiscreteScheduler", timestep_spacing: "trailing" });
      try {
        assert.deepEqual(defaultSampler(m, 1).timesteps(), [999]);
        assert.deepEqual(defaultSampler(m, 4).timesteps(), [999, 749, 499, 249]);
        assert.equal(defaultSampler(m, 4).name, "euler");
      } finally {
        await m.release();
      }
    });
    await t.step(
      "DDIM steps_offset 0: [900, …, 0]; + set_alpha_to_one: last step 0.98584",
      async () => {
        const m = await load({
          _class_name: "DDIMScheduler",
          steps_offset: 0,
          set_alpha_to_one: true,
        });
        try {
          const s = defaultSampler(m, 10);
          assert.deepEqual(s.timesteps(), [900, 800, 700, 600, 500, 400, 300, 200, 100, 0]);
          // numpy (the case's own figure): x = 1, ε = 0.5 at t = 0 with ᾱ_prev = 1.
          const last = s.step(Float32Array.from([1]), Float32Array.from([0.5]), 9)[0];
          assert.ok(Math.abs(last - 0.98584) < 5e-6, `got ${last}`);
        } finally {
          await m.release();
        }
      },
    );
    await t.step(
      "set_alpha_to_one alone (offset 1, last t = 1): clean estimate 0.98020",
      async () => {
        const m = await load({ _class_name: "DDIMScheduler", set_alpha_to_one: true });
        try {
          const s = defaultSampler(m, 10);
          assert.equal(s.timesteps()[9], 1);
          const last = s.step(Float32Array.from([1]), Float32Array.from([0.5]), 9)[0];
          assert.ok(Math.abs(last - 0.98020) < 5e-6, `got ${last}`);
        } finally {
          await m.release();
        }
      },
    );
    await t.step("stochastic samplers get seeded step noise from sampleLatents", async () => {
      const m = await load({ _class_name: "EulerAncestralDiscreteScheduler" });
      try {
        assert.equal(defaultSampler(m, 3).stochastic, true);
        const run = (seed: number) => sampleLatents(m, "a cat", { seed, steps: 3, guidance: 1 });
        const [a, b, c] = [await run(1), await run(1), await run(2)];
        assert.ok(a.data.every(Number.isFinite));
        assert.deepEqual(a.data, b.data);
        assert.notDeepEqual(a.data, c.data);
      } finally {
        await m.release();
      }
    });
    await t.step(
      "an unsupported class is refused at load; `scheduler` runs it as another",
      async () => {
        const dpm = { _class_name: "DPMSolverMultistepScheduler", algorithm_type: "dpmsolver++" };
        await assert.rejects(
          () => load(dpm),
          (e: unknown) =>
            e instanceof AttnkitError && e.argument === "_class_name" &&
            /DPMSolverMultistepScheduler.*EulerDiscreteScheduler/s.test(e.message),
        );
        const m = await load(dpm, "EulerDiscreteScheduler");
        try {
          assert.equal(defaultSampler(m, 4).name, "euler");
          // hf_tiny's steps_offset 1 with Euler's own default spacing, "linspace".
          assert.deepEqual(defaultSampler(m, 4).timesteps(), [999, 666, 333, 0]);
        } finally {
          await m.release();
        }
      },
    );
    await t.step("an unknown value is refused at load, naming the key", async () => {
      await assert.rejects(
        () => load({ timestep_spacing: "even" }),
        (e: unknown) => e instanceof AttnkitError && e.argument === "timestep_spacing",
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("scheduler configs: refusals name the key (and the supported classes)", () => {
  const refused: [Record<string, unknown>, string, RegExp][] = [
    [{ _class_name: "DPMSolverMultistepScheduler" }, "_class_name", /DDIMScheduler, DDPMScheduler/],
    [{}, "_class_name", /missing/],
    [{ _class_name: "DDIMScheduler", timestep_spacing: "even" }, "timestep_spacing", /"leading"/],
    [{ _class_name: "DDIMScheduler", beta_schedule: "sigmoid" }, "beta_schedule", /one of/],
    [{ _class_name: "DDIMScheduler", prediction_type: "flow" }, "prediction_type", /v_prediction/],
    [{ _class_name: "DDIMScheduler", steps_offset: -1 }, "steps_offset", /integer/],
    [{ _class_name: "DDIMScheduler", clip_sample: "yes" }, "clip_sample", /true or false/],
    [{ _class_name: "DDIMScheduler", trained_betas: [0.1, 0.2] }, "trained_betas", /1000 numbers/],
    [{ _class_name: "DDPMScheduler", variance_type: "learned_range" }, "variance_type", /extra/],
    [{ _class_name: "DDPMScheduler", variance_type: "fixed_large_log" }, "variance_type", /NaN/],
    [{ _class_name: "EulerDiscreteScheduler", use_beta_sigmas: true }, "use_beta_sigmas", /scipy/],
    [
      {
        _class_name: "EulerDiscreteScheduler",
        use_karras_sigmas: true,
        use_exponential_sigmas: true,
      },
      "use_karras_sigmas",
      /only one/,
    ],
    [
      { _class_name: "EulerDiscreteScheduler", final_sigmas_type: "one" },
      "final_sigmas_type",
      /zero/,
    ],
    [
      { _class_name: "EulerDiscreteScheduler", interpolation_type: "cubic" },
      "interpolation_type",
      /log_linear/,
    ],
    [
      { _class_name: "EulerAncestralDiscreteScheduler", prediction_type: "sample" },
      "prediction_type",
      /no "sample"/,
    ],
    [
      { _class_name: "FlowMatchEulerDiscreteScheduler", invert_sigmas: true },
      "invert_sigmas",
      /not supported/,
    ],
    [
      { _class_name: "FlowMatchEulerDiscreteScheduler", time_shift_type: "cubic" },
      "time_shift_type",
      /exponential/,
    ],
    [{ _class_name: "FlowMatchEulerDiscreteScheduler", shift: 0 }, "shift", /> 0/],
  ];
  for (const [cfg, key, msg] of refused) {
    assert.throws(
      () => resolveSchedulerConfig(cfg),
      (e: unknown) => e instanceof AttnkitError && e.argument === key && msg.test(e.message),
      `${JSON.stringify(cfg).slice(0, 80)} → ${key}`,
    );
  }
  // Step-dependent refusals.
  const zeroSnrEps = {
    _class_name: "DDIMScheduler",
    rescale_betas_zero_snr: true,
    timestep_spacing: "trailing",
  };
  assert.throws(() => samplerFromConfig(zeroSnrEps, 4), /rescale_betas_zero_snr/);
  const flux = { _class_name: "FlowMatchEulerDiscreteScheduler", use_dynamic_shifting: true };
  assert.throws(
    () => samplerFromConfig(flux, 4),
    (e: unknown) => (e as AttnkitError).argument === "imageSeqLen",
  );
  const lcmConfig = { _class_name: "LCMScheduler", original_inference_steps: 8 };
  assert.throws(
    () => samplerFromConfig(lcmConfig, 9),
    (e: unknown) => (e as AttnkitError).argument === "steps",
  );
  assert.throws(
    () => resolveSchedulerConfig({ _class_name: "LCMScheduler", original_inference_steps: 0 }),
    (e: unknown) => (e as AttnkitError).argument === "original_inference_steps",
  );
  const leading = { _class_name: "DDIMScheduler", steps_offset: 1 };
  assert.throws(
    () => samplerFromConfig(leading, 1000),
    (e: unknown) => (e as AttnkitError).argument === "steps",
  );
});

Deno.test("attnkit's own trailing spacing follows diffusers' float arithmetic", () => {
  // numpy: round(arange(1000, 0, -1000/48))[3] - 1 = 936 (937.5 in exact arithmetic gives 937).
  assert.equal(spacedTimesteps(48, { spacing: "trailing" })[3], 936);
  assert.equal(ddim({ steps: 48, spacing: "trailing" }).timesteps()[3], 936);
  // numpy's arange gives 62 values for 61 steps; attnkit keeps 61, ending at t = 15.
  const ts = spacedTimesteps(61, { spacing: "trailing" });
  assert.equal(ts.length, 61);
  assert.equal(ts[60], 15);
});

Deno.test("scheduler configs: className runs a config with another sampler; ignored keys listed", () => {
  const sd15 = {
    _class_name: "PNDMScheduler",
    skip_prk_steps: true,
    steps_offset: 1,
    clip_sample: false,
  };
  const spec = resolveSchedulerConfig(sd15, { className: "EulerDiscreteScheduler" });
  assert.equal(spec.kind, "euler");
  assert.deepEqual(spec.ignoredKeys, ["skip_prk_steps", "clip_sample"]);
  assert.equal(
    samplerFromConfig(sd15, 4, { className: "EulerAncestralDiscreteScheduler" }).name,
    "eulerAncestral",
  );
  assert.equal(samplerFromConfig(sd15, 4).name, "ddim");
});
