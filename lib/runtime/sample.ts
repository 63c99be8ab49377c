/**
 * The composable sampling loop: model + sampler + per-step hooks → latents. Candidates (one seed
 * each) run batched through the denoiser with classifier-free guidance (unconditional and
 * conditional halves in one call); the conditional half's attention taps go to `onStep`, and an
 * optional `adjust` may replace the latents before each step (latent optimisation).
 *
 * @module
 */
import { check } from "../errors.ts";
import { gaussian, mulberry32 } from "../random.ts";
import { type Tensor, tensor } from "../tensor.ts";
import type { AttentionTap } from "../attention/types.ts";
import type { Sampler } from "../samplers/sampler.ts";
import { ddim } from "../samplers/ddim.ts";
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
  /** Integer seed; candidate i uses seed + i. */
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
  /** Called after each denoiser call. */
  onStep?: (e: StepEvent) => void | Promise<void>;
  /** Called before each denoiser call; returns the latents to use. */
  adjust?: (e: AdjustEvent) => Promise<Tensor>;
  /** Show a progress bar on stderr even when it is not a terminal. */
  progress?: boolean;
  /** Label of the progress bar. */
  label?: string;
}

/** Initial latents for candidates seed, seed + 1, …: N(0, 1) × the sampler's σ. */
export function initialLatents(
  shape: readonly [number, number, number],
  seed: number,
  candidates: number,
  sigma = 1,
): Tensor {
  check(Number.isInteger(seed), "seed", `must be an integer, got ${seed}`);
  const per = shape[0] * shape[1] * shape[2];
  const data = new Float32Array(per * candidates);
  for (let i = 0; i < candidates; i++) {
    const g = gaussian(mulberry32(seed + i), per);
    for (let j = 0; j < per; j++) data[i * per + j] = g[j] * sigma;
  }
  return tensor([candidates, ...shape], data);
}

/**
 * The default sampler of a model: DDIM (η = 0) on its training schedule, or flow-matching Euler
 * with the model's shift for a rectified-flow (`"flow"`) model.
 */
export function defaultSampler(model: DiffusionModel, steps = 50): Sampler {
  const info = model.info;
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

/** Runs the sampler from seeded noise to clean latents `[N, C, h, w]` for one prompt. */
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
  let x = initialLatents(model.info.latentShape, opts.seed, n, sampler.initNoiseSigma);
  const ts = sampler.timesteps();
  const bar = stepProgress(opts.label ?? "sampling", ts.length, opts.progress);
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
    const res = guidance === 1
      ? await model.denoise(xin, ts[i], condContext, { taps: opts.taps })
      : await model.denoise(doubled, ts[i], context, { taps: opts.taps });
    const per = x.data.length;
    const out = guidance === 1
      ? res.out
      : tensor(x.shape, cfg(res.out.data.subarray(0, per), res.out.data.subarray(per), guidance));
    const taps = res.taps && (guidance === 1 ? res.taps : res.taps.slice(n));
    if (opts.onStep) await opts.onStep({ ...base, latents: x, out, taps });
    x = tensor(x.shape, sampler.step(x.data, out.data, i));
    bar.update(i + 1);
  }
  bar.finish();
  return x;
}

/** Decodes latents (dividing by the model's scale factor) to images `[N, 3, H, W]` in [0, 1]. */
export function decodeLatents(model: DiffusionModel, latents: Tensor): Promise<Tensor> {
  const s = model.info.scaleFactor;
  return model.decode(tensor(latents.shape, latents.data.map((v) => v / s)));
}

/** Prompt → images: {@link sampleLatents} then {@link decodeLatents}. */
export async function generate(
  model: DiffusionModel,
  prompt: string,
  opts: SampleOptions,
): Promise<Tensor> {
  return decodeLatents(model, await sampleLatents(model, prompt, opts));
}
