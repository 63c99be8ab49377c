/**
 * The composable sampling loop: model + sampler + per-step hooks → latents. Candidates (one seed
 * each) run batched through the denoiser with classifier-free guidance (unconditional and
 * conditional halves in one call); the conditional half's attention taps go to `onStep`, and an
 * optional `adjust` may replace the latents before each step (latent optimisation).
 *
 * @module
 */
import { check } from "../errors.ts";
import { checkSeed, gaussian, seededRng, splitmix64 } from "../random.ts";
import { expectFinite, type Tensor, tensor } from "../tensor.ts";
import type { AttentionMaps, AttentionTap } from "../attention/types.ts";
import type { KernelOptions } from "../../kernels/backend.ts";
import { denoiseWithMaps } from "./maps.ts";
import type { Sampler } from "../samplers/sampler.ts";
import { ddim } from "../samplers/ddim.ts";
import { samplerFromConfig } from "../samplers/from_config.ts";
import { flowMatch } from "../samplers/flow_match.ts";
import { cfg } from "../samplers/guidance.ts";
import type { DiffusionModel } from "./model.ts";
import { stepProgress } from "./progress.ts";

/** What `onStep` sees after the denoiser ran at step `step`. */
export interface StepEvent {
  /** Step index, 0 = noisiest. */
  step: number;
  /** Number of steps. */
  steps: number;
  /** The model timestep of this step. */
  timestep: number;
  /** The training horizon T (schedules use t/T). */
  trainSteps: number;
  /** Latents the denoiser saw, `[N, C, h, w]`. */
  latents: Tensor;
  /** Guided model output, `[N, C, h, w]`. */
  out: Tensor;
  /** Conditional-half attention taps per candidate (when `taps` was asked). */
  taps?: AttentionTap[][];
  /** Conditional-half accumulated maps per candidate (ISAC Eq. 1-2, when `maps` was asked). */
  maps?: AttentionMaps[];
}

/** What `adjust` gets before step `step`: it returns the latents to denoise. */
export interface AdjustEvent {
  /** Step index, 0 = noisiest. */
  step: number;
  /** Number of steps. */
  steps: number;
  /** The model timestep of this step. */
  timestep: number;
  /** The training horizon T (schedules use t/T). */
  trainSteps: number;
  /** Current latents `[N, C, h, w]`, before the sampler's input scaling. */
  latents: Tensor;
  /** Prompt embeddings repeated per candidate `[N, L, D]` (conditional only, no CFG half). */
  context: Tensor;
  /** The sampler in use (its timesteps and input scaling). */
  sampler: Sampler;
}

/** Options of {@link sampleLatents}. */
export interface SampleOptions {
  /** Seed, a safe integer; candidate i uses seed + i (see {@link seededRng} for the mixing). */
  seed: number;
  /** Number of candidates run together (default 1). */
  candidates?: number;
  /** Sampler (default DDIM η = 0 with `steps` steps on the model's schedule). */
  sampler?: Sampler;
  /** Steps for the default sampler (default 50). */
  steps?: number;
  /** Classifier-free guidance scale (default 7.5; 1 = no guidance). */
  guidance?: number;
  /** Ask the denoiser for attention taps. */
  taps?: boolean;
  /**
   * Ask for the accumulated maps (ISAC Eq. 1-2) of every candidate's conditional pass: made
   * inside the model's graph when the model can, else accumulated from its taps on `kernels`.
   */
  maps?: boolean;
  /** Where maps accumulated from taps are computed (default: the backend picked once). */
  kernels?: KernelOptions;
  /** Called after each denoiser call. */
  onStep?: (e: StepEvent) => void | Promise<void>;
  /** Called before each denoiser call; returns the latents to use. */
  adjust?: (e: AdjustEvent) => Promise<Tensor>;
  /** Draw a progress bar on stderr (default false: the library never writes to stderr unasked). */
  progress?: boolean;
  /** Called after each step with (steps done, total steps). */
  onProgress?: (done: number, total: number) => void;
  /** Label of the progress bar. */
  label?: string;
  /**
   * Initial latents x_T `[N, C, h, w]`, used as they are (already × the sampler's σ_init);
   * default: seeded noise from `seed`. N must equal `candidates`.
   */
  latents?: Tensor;
}

/**
 * Initial latents for candidates seed, seed + 1, …: N(0, 1) × the sampler's σ. Each candidate's
 * stream is {@link seededRng}(seed + i), so candidate i of seed s equals candidate 0 of seed s + i
 * (a chosen candidate can be re-run alone) and the candidates of one call are distinct. `seed`
 * and `seed + candidates − 1` must be safe integers (else an AttnkitError naming `seed`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { initialLatents } from "@attnkit/attnkit";
 * const x = initialLatents([4, 16, 16], 7, 2); // two candidates, seeds 7 and 8
 * assert.deepEqual(x.shape, [2, 4, 16, 16]);
 * // Candidate 1 of seed 7 is candidate 0 of seed 8: a chosen candidate can be re-run alone.
 * assert.deepEqual(initialLatents([4, 16, 16], 8, 1).data, x.data.subarray(4 * 16 * 16));
 * ```
 */
export function initialLatents(
  shape: readonly [number, number, number],
  seed: number,
  candidates: number,
  sigma = 1,
): Tensor {
  checkSeed(seed);
  check(
    Number.isSafeInteger(candidates) && candidates >= 1,
    "candidates",
    `must be an integer ≥ 1, got ${candidates}`,
  );
  check(
    seed <= Number.MAX_SAFE_INTEGER - (candidates - 1),
    "seed",
    `seed + candidates − 1 = ${seed} + ${candidates - 1} is beyond the safe integers`,
  );
  check(Number.isFinite(sigma) && sigma > 0, "sigma", `must be finite and > 0, got ${sigma}`);
  const per = shape[0] * shape[1] * shape[2];
  const data = new Float32Array(per * candidates);
  for (let i = 0; i < candidates; i++) {
    const g = gaussian(seededRng(seed + i), per);
    for (let j = 0; j < per; j++) data[i * per + j] = g[j] * sigma;
  }
  return tensor([candidates, ...shape], data);
}

/**
 * The default sampler of a model: the one its scheduler config names (`info.schedulerConfig`,
 * through `samplerFromConfig`); else flow-matching Euler with the model's shift for a
 * rectified-flow (`"flow"`) model; else DDIM (η = 0) on its training schedule.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultSampler, loadShapesModel } from "@attnkit/attnkit";
 * const model = await loadShapesModel();
 * const sampler = defaultSampler(model, 4);
 * assert.equal(sampler.name, "ddim");
 * assert.deepEqual(sampler.timesteps(), [751, 501, 251, 1]); // "leading" spacing, offset 1
 * await model.release();
 * ```
 */
export function defaultSampler(model: DiffusionModel, steps = 50): Sampler {
  const info = model.info;
  const config = info.schedulerConfig;
  if (config) {
    const [c, h, w] = info.latentShape;
    return samplerFromConfig(config, steps, { itemSize: c * h * w, source: "scheduler config" });
  }
  if (info.prediction === "flow") {
    return flowMatch({ steps, shift: info.flowShift ?? 1, trainSteps: info.trainSteps });
  }
  const b = info.betaSchedule;
  return ddim({
    steps,
    betaSchedule: b.kind,
    betaStart: b.betaStart,
    betaEnd: b.betaEnd,
    trainSteps: model.info.trainSteps,
    prediction: info.prediction,
  });
}

/**
 * The N(0, 1) noise a stochastic sampler (DDPM, ancestral Euler, DDIM η > 0) adds at step `i`:
 * candidate c draws from its own stream, seeded by seed + c and the step, so a candidate's images
 * do not depend on how many candidates run beside it. The stream is SplitMix64 started at
 * ((seed + c) · 2^20) XOR (i + 1): distinct for every (seed, candidate, step) with fewer than 2^20
 * steps, for every safe-integer seed.
 */
function stepNoise(
  shape: readonly number[],
  seed: number,
  candidates: number,
  i: number,
): Float32Array {
  const per = shape.slice(1).reduce((a, b) => a * b, 1);
  const out = new Float32Array(per * candidates);
  for (let c = 0; c < candidates; c++) {
    const start = (BigInt(seed + c) << 20n) ^ BigInt(i + 1);
    out.set(gaussian(splitmix64(BigInt.asUintN(64, start)), per), c * per);
  }
  return out;
}

function repeatBatch(t: Tensor, n: number): Tensor {
  const out = new Float32Array(t.data.length * n);
  for (let r = 0; r < n; r++) out.set(t.data, r * t.data.length);
  return tensor([t.shape[0] * n, ...t.shape.slice(1)], out);
}

/** `a` then `b` along the batch axis (the CFG halves of one denoiser call). */
function concatBatch(a: Tensor, b: Tensor): Tensor {
  const out = new Float32Array(a.data.length + b.data.length);
  out.set(a.data);
  out.set(b.data, a.data.length);
  return tensor([a.shape[0] + b.shape[0], ...a.shape.slice(1)], out);
}

/**
 * Runs the sampler from seeded noise to clean latents `[N, C, h, w]` for one prompt.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadShapesModel, sampleLatents } from "@attnkit/attnkit";
 * const model = await loadShapesModel();
 * const latents = await sampleLatents(model, "a red circle", { seed: 0, steps: 4, candidates: 2 });
 * assert.deepEqual(latents.shape, [2, ...model.info.latentShape]); // [2, 4, 16, 16]
 * assert.ok(latents.data.every(Number.isFinite));
 * await model.release();
 * ```
 */
export async function sampleLatents(
  model: DiffusionModel,
  prompt: string,
  opts: SampleOptions,
): Promise<Tensor> {
  const n = opts.candidates ?? 1;
  check(Number.isInteger(n) && n >= 1, "candidates", `must be a positive integer, got ${n}`);
  const guidance = opts.guidance ?? 7.5;
  check(Number.isFinite(guidance) && guidance >= 1, "guidance", `must be ≥ 1, got ${guidance}`);
  const sampler = opts.sampler ?? defaultSampler(model, opts.steps ?? 50);
  const [cond, uncond] = [await model.encodeText([prompt]), await model.encodeText([""])];
  const condContext = repeatBatch(cond, n);
  const context = concatBatch(repeatBatch(uncond, n), condContext);
  let x = opts.latents ??
    initialLatents(model.info.latentShape, opts.seed, n, sampler.initNoiseSigma);
  if (opts.latents) {
    const want = [n, ...model.info.latentShape];
    check(
      x.shape.length === 4 && x.shape.every((d, i) => d === want[i]),
      "latents",
      `expected shape [${want}], got [${x.shape}]`,
    );
    expectFinite(x, "latents");
  }
  const ts = sampler.timesteps();
  const bar = stepProgress(opts.label ?? "sampling", ts.length, {
    bar: opts.progress === true,
    onProgress: opts.onProgress,
  });
  for (let i = 0; i < ts.length; i++) {
    const base = {
      step: i,
      steps: ts.length,
      timestep: ts[i],
      trainSteps: model.info.trainSteps,
    };
    if (opts.adjust) {
      x = await opts.adjust({ ...base, latents: x, context: condContext, sampler });
    }
    const xin = tensor(x.shape, sampler.scaleInput(x.data, i));
    const doubled = concatBatch(xin, xin);
    const ask = { taps: opts.taps, maps: opts.maps, kernels: opts.kernels };
    const res = guidance === 1
      ? await denoiseWithMaps(model, xin, ts[i], condContext, ask)
      : await denoiseWithMaps(model, doubled, ts[i], context, { ...ask, from: n });
    const per = x.data.length;
    const out = guidance === 1
      ? res.out
      : tensor(x.shape, cfg(res.out.data.subarray(0, per), res.out.data.subarray(per), guidance));
    const taps = res.taps && (guidance === 1 ? res.taps : res.taps.slice(n));
    const maps = res.maps;
    if (opts.onStep) await opts.onStep({ ...base, latents: x, out, taps, maps });
    const z = sampler.stochastic ? stepNoise(x.shape, opts.seed, n, i) : undefined;
    x = tensor(x.shape, sampler.step(x.data, out.data, i, z));
    bar.update(i + 1);
  }
  bar.finish();
  return x;
}

/**
 * Decodes latents (dividing by the model's scale factor) to images `[N, 3, H, W]` in [0, 1].
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeLatents, loadShapesModel, sampleLatents } from "@attnkit/attnkit";
 * const model = await loadShapesModel();
 * const latents = await sampleLatents(model, "a blue square", { seed: 0, steps: 4 });
 * const images = await decodeLatents(model, latents);
 * assert.deepEqual(images.shape, [1, 3, 64, 64]);
 * assert.ok(images.data.every((v) => v >= 0 && v <= 1));
 * await model.release();
 * ```
 */
export function decodeLatents(model: DiffusionModel, latents: Tensor): Promise<Tensor> {
  check(
    !!model && typeof model.decode === "function" && !!model.info,
    "model",
    "expected a DiffusionModel (from loadShapesModel, loadSd15Model, …)",
  );
  check(
    !!latents && Array.isArray(latents.shape) && latents.data instanceof Float32Array,
    "latents",
    "expected a Tensor [B, C, h, w] ({shape, data: Float32Array})",
  );
  const s = model.info.scaleFactor;
  return model.decode(tensor(latents.shape, latents.data.map((v) => v / s)));
}

/**
 * Prompt → images: {@link sampleLatents} then {@link decodeLatents}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generate, loadShapesModel } from "@attnkit/attnkit";
 * const model = await loadShapesModel();
 * const images = await generate(model, "two red circles", { seed: 0, steps: 4, guidance: 5 });
 * assert.deepEqual(images.shape, [1, 3, 64, 64]); // [N, 3, H, W] in [0, 1]
 * await model.release();
 * ```
 */
export async function generate(
  model: DiffusionModel,
  prompt: string,
  opts: SampleOptions,
): Promise<Tensor> {
  return decodeLatents(model, await sampleLatents(model, prompt, opts));
}
