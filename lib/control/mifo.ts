/**
 * MIFO's precise-synthesis box control (MIFO §3.3, methods spec §4c; Bounded Attention §5 for the
 * masking and the mask refinement). For user boxes `[x0, y0, x1, y1]` in [0, 1], one per target:
 *
 * 1. Latent optimisation at steps i < `guidanceSteps` (15): up to `iterations` (5) plain gradient
 *    steps z ← z − η_i ∇_z L on the box loss (lib/losses/box.ts: in-box reward, out-of-box
 *    penalty with weight α(i) from `schedule.mifoDecay()`, on cross- and self-attention, weights
 *    1.5 / 0.5), η_i = 8 + (2 − 8)·i/15. As in BA's loop, a candidate stops once the normalised
 *    loss of its previous iteration is below 0.2 (so the update after the first sub-threshold
 *    loss is still taken). `extraLoss` (e.g. ISAC's `isacStepLoss(spec)`) is added to the box
 *    loss, so both steer the same latent; the stopping test reads the box loss only.
 * 2. Attention steering in the regular denoiser passes (steer.ts): subject tokens visible only
 *    inside their masks, the end token hidden from the background, subject pixels attending only
 *    to their own subject and the background. From step `steerFrom` (default 0: BA's code masks
 *    every regular pass; MIFO's text describes the later steps, pass `steerFrom: 15` for that).
 * 3. Mask refinement from step `refineFrom` (15), every `refineEvery` (5) steps: running means of
 *    the self maps and of each subject's leading-token cross map (every regular pass since step 0),
 *    K-means with K = 3·S over the column-max-normalised self rows, cross masks
 *    `minmax(sigmoid(10·(m/max m − 0.2)))·current mask`, each cluster to the subject with the best
 *    ⟨cross, cluster⟩ / min(|cross|, |cluster|), clusters scoring < 0.2 dropped, an empty subject
 *    mask replaced by its box (cut from the others). Masks replace the boxes in the steering.
 *
 * Differences from the reference code, all forced by this runtime or chosen for determinism:
 * - The loss and the refinement read ISAC's accumulated maps (every tapped layer, heads and layers
 *   averaged at the largest layer size) instead of MIFO's per-layer head sums over layers 12–19;
 *   see box.ts for the effect on the penalty (`sumScale`).
 * - The guidance (loss) passes run without the attention masks (the VJP graph has no bias
 *   inputs); BA computes its loss on masked attention. The maps for the refinement are computed
 *   from the steered pass's Q and K without the bias (BA averages the masked probabilities).
 * - α uses the denoising step index i; MIFO's code derives it from a call counter (a quirk that
 *   only matches i when all 5 iterations run).
 * - K-means is lib/isac/kmeans.ts (k-means++ with a fixed seed, no warm start); BA uses
 *   torch_kmeans with 100 restarts, then warm-started from the previous centres.
 * - No part-of-speech "filter" tokens (no tagger); pass `filterTokens` to hide some.
 * - Subjects default to the prompt parser's targets with their attribute tokens; the leading token
 *   is the class token.
 * Not done: MIFO's one-image learning stage (textual-inversion-like token learning + DreamBooth).
 *
 * @module
 */
import { accumulateMaps } from "../attention/accumulate.ts";
import type { AttentionMaps } from "../attention/types.ts";
import { check } from "../errors.ts";
import { kmeans } from "../isac/kmeans.ts";
import { type Box, boxLoss, type BoxLossResult, checkBox, rasterBox } from "../losses/box.ts";
import type { MapsLossResult } from "../losses/types.ts";
import type { DiffusionModel } from "../runtime/model.ts";
import { defaultSampler, sampleLatents, type SampleOptions } from "../runtime/sample.ts";
import { schedule } from "../schedule.ts";
import { type Tensor, tensor } from "../tensor.ts";
import { isacSpecFor } from "./isac_spec.ts";
import { NonFiniteLossError } from "./latent_grad.ts";
import {
  adjustGrad,
  type AdjustHook,
  itemNorms,
  type StepAt,
  type StepMapsLoss,
} from "./optimise_latent.ts";
import { boundedBias, resizeMask, steeredModel } from "./steer.ts";

/** A subject: its token columns (all of them are steered) and its leading token. */
export interface MifoSubject {
  /** Every token column of the subject (attribute and noun tokens). */
  tokens: readonly number[];
  /** The token whose cross map drives the mask refinement (the noun). */
  leading: number;
}

/** Options of {@link mifoSynthesis}; defaults are MIFO's `run()` values. */
export interface MifoOptions extends Omit<SampleOptions, "adjust" | "onStep" | "taps"> {
  /** One box per subject, `[x0, y0, x1, y1]` in [0, 1]. */
  boxes: readonly Box[];
  /** Subjects in box order (default: the prompt's targets; at least as many as boxes). */
  subjects?: readonly MifoSubject[];
  /** End-token column (default: found from the tokenization; null for none). */
  eos?: number | null;
  /** Steps with latent optimisation (default 15). */
  guidanceSteps?: number;
  /** Gradient steps per optimised step (default 5). */
  iterations?: number;
  /** Stop a candidate's iterations below this normalised box loss (default 0.2). */
  lossThreshold?: number;
  /** Step size η at step i (default 8 + (2 − 8)·i / guidanceSteps). */
  stepSize?: (step: number) => number;
  /** Penalty weight α at step i (default `schedule.mifoDecay()`). */
  alpha?: (step: number) => number;
  /** Cross-term weight (default 1.5). */
  crossScale?: number;
  /** Self-term weight (default 0.5). */
  selfScale?: number;
  /** Multiplier on fg and bg sums (default 1; see lib/losses/box.ts). */
  sumScale?: number;
  /** A further loss summed with the box loss during optimisation (e.g. ISAC's). */
  extraLoss?: StepMapsLoss;
  /** Steer attention with the masks (default true). */
  steer?: boolean;
  /** First steered step (default 0). */
  steerFrom?: number;
  /** First mask refinement step (default 15). */
  refineFrom?: number;
  /** Refine at steps that are multiples of this (default 5). */
  refineEvery?: number;
  /** K-means clusters per subject (default 3). */
  clustersPerSubject?: number;
  /** Centre of the cross-mask sigmoid (default 0.2). */
  crossThreshold?: number;
  /** Clusters scoring below this go to the background (default 0.2). */
  clusterThreshold?: number;
  /** Columns hidden everywhere in cross-attention (BA's filter tokens; default none). */
  filterTokens?: readonly number[];
  /** K-means seed (default 0). */
  kmeansSeed?: number;
}

/** One gradient iteration at one step. */
export interface MifoIteration {
  /** Total loss per active candidate. */
  value: number[];
  /** Normalised box loss per active candidate. */
  normalized: number[];
  /** ‖∇‖₂ per active candidate. */
  gradNorm: number[];
  /** The candidates that were updated. */
  items: number[];
}

/** One optimised step. */
export interface MifoStepLog {
  /** Step index (0 = noisiest). */
  step: number;
  /** Penalty weight α. */
  alpha: number;
  /** Step size η. */
  eta: number;
  /** Each latent update made at this step. */
  iterations: MifoIteration[];
}

/** The outcome of {@link mifoSynthesis}. */
export interface MifoResult {
  /** Clean latents `[N, C, h, w]`. */
  latents: Tensor;
  /** One entry per optimised step. */
  log: MifoStepLog[];
  /** Steps at which the masks were refined. */
  refinedAt: number[];
  /** Final subject masks per candidate, `[H·W]` at `maskSize` (the boxes if never refined). */
  masks: Uint8Array[][];
  /** The grid of `masks` (the accumulated maps' size). */
  maskSize: readonly [number, number];
  /** The subjects used. */
  subjects: readonly MifoSubject[];
  /** The end-token column used, if any. */
  eos?: number;
}

/** MIFO's step size: linear from `start` at step 0 towards `end` at `guidanceSteps`. */
export function mifoStepSize(step: number, guidanceSteps = 15, start = 8, end = 2): number {
  return start + ((end - start) / guidanceSteps) * step;
}

/** The end-token column of a tokenized prompt: one past the last token with text. */
export function eosColumn(model: DiffusionModel, prompt: string): number {
  const { pieces } = model.tokenizer.tokenize(prompt);
  let last = 0;
  pieces.forEach((p, i) => {
    if (p.end > p.start) last = i;
  });
  return last + 1;
}

/** The prompt's targets as MIFO subjects (attribute + noun tokens; the class token leads). */
export function subjectsOf(model: DiffusionModel, prompt: string): MifoSubject[] {
  return isacSpecFor(model, prompt).targets.map((t) => ({
    tokens: [...new Set([...t.attributes.flatMap((a) => a.tokens), ...t.tokens])].sort((a, b) =>
      a - b
    ),
    leading: t.classToken,
  }));
}

function integerIn(v: number, lo: number, hi: number, argument: string, what: string): void {
  check(
    Number.isInteger(v) && v >= lo && v <= hi,
    argument,
    () => `expected ${what} in ${lo} … ${hi}, got ${v}`,
  );
}

/** Running means of the maps the mask refinement needs, per candidate. */
export interface RefineStats {
  /** Mean self map `[HW, HW]`. */
  self: Float32Array;
  /** Mean cross column of each subject's leading token, `[HW]` each. */
  cross: Float64Array[];
  /** Maps averaged so far. */
  count: number;
}

/** Adds one step's maps to the running means (BA's `_save_mask_maps`). */
export function observe(
  stats: RefineStats | undefined,
  maps: AttentionMaps,
  leading: readonly number[],
): RefineStats {
  const hw = maps.size[0] * maps.size[1];
  const l = maps.cross.shape[1];
  const s = stats ?? {
    self: new Float32Array(hw * hw),
    cross: leading.map(() => new Float64Array(hw)),
    count: 0,
  };
  s.count++;
  const w = 1 / s.count;
  const sd = maps.self.data;
  for (let i = 0; i < s.self.length; i++) s.self[i] += (sd[i] - s.self[i]) * w;
  leading.forEach((c, j) => {
    const m = s.cross[j];
    for (let p = 0; p < hw; p++) m[p] += (maps.cross.data[p * l + c] - m[p]) * w;
  });
  return s;
}

/** Options of {@link refineMasks}. */
export interface RefineOptions {
  /** K-means clusters per subject (default 3). */
  clustersPerSubject?: number;
  /** Sigmoid centre of the cross masks (default 0.2). */
  crossThreshold?: number;
  /** Minimum cluster score (default 0.2). */
  clusterThreshold?: number;
  /** K-means seed (default 0). */
  seed?: number;
}

const EPS = 1e-5;

/**
 * Bounded Attention's mask refinement (`_build_self_masks`, `_obtain_cross_masks`,
 * `_fix_zero_masks`) on running-mean maps at grid `size`: new subject masks from the current
 * ones and the boxes (both `[H·W]` per subject).
 */
export function refineMasks(
  stats: RefineStats,
  current: readonly Uint8Array[],
  boxes: readonly Uint8Array[],
  size: readonly [number, number],
  opts: RefineOptions = {},
): Uint8Array[] {
  const hw = size[0] * size[1];
  const s = current.length;
  check(
    stats.self.length === hw * hw && stats.cross.length === s,
    "stats",
    "does not fit the masks",
  );
  const k = Math.min(hw, s * (opts.clustersPerSubject ?? 3));
  // Self rows with every key column divided by its maximum over queries.
  const colMax = new Float64Array(hw);
  for (let q = 0; q < hw; q++) {
    for (let c = 0; c < hw; c++) colMax[c] = Math.max(colMax[c], stats.self[q * hw + c]);
  }
  const feats = new Float32Array(hw * hw);
  for (let q = 0; q < hw; q++) {
    for (let c = 0; c < hw; c++) feats[q * hw + c] = stats.self[q * hw + c] / (colMax[c] + EPS);
  }
  const { assign } = kmeans(tensor([hw, hw], feats), k, { seed: opts.seed ?? 0 });
  // Cross masks: max-normalise, sigmoid, min-max normalise, times the current mask.
  const thr = opts.crossThreshold ?? 0.2;
  const cross = stats.cross.map((m, j) => {
    let max = 0;
    for (const v of m) max = Math.max(max, v);
    const sig = Array.from(m, (v) => 1 / (1 + Math.exp(-10 * (v / (max + EPS) - thr))));
    const lo = Math.min(...sig), hi = Math.max(...sig);
    return sig.map((v, p) => ((v - lo) / (hi - lo + EPS)) * (current[j][p] ? 1 : 0));
  });
  const clusterSize = new Float64Array(k);
  for (const a of assign) clusterSize[a]++;
  const bestSubject = new Int32Array(k);
  const bestScore = new Float64Array(k).fill(-Infinity);
  cross.forEach((m, j) => {
    const area = m.reduce((a, b) => a + b, 0);
    const inter = new Float64Array(k);
    for (let p = 0; p < hw; p++) inter[assign[p]] += m[p];
    for (let c = 0; c < k; c++) {
      // A subject with no cross mass scores 0 (the reference divides 0 by 0 there).
      const denom = Math.min(area, clusterSize[c]);
      const score = denom > 0 ? inter[c] / denom : 0;
      if (score > bestScore[c]) {
        bestScore[c] = score;
        bestSubject[c] = j;
      }
    }
  });
  const minScore = opts.clusterThreshold ?? 0.2;
  const masks = current.map(() => new Uint8Array(hw));
  for (let p = 0; p < hw; p++) {
    const c = assign[p];
    if (bestScore[c] >= minScore) masks[bestSubject[c]][p] = 1;
  }
  for (let j = 0; j < s; j++) {
    if (masks[j].some((v) => v)) continue;
    for (let o = 0; o < s; o++) {
      for (let p = 0; p < hw; p++) {
        masks[o][p] = o === j ? boxes[j][p] : masks[o][p] && !boxes[j][p] ? 1 : 0;
      }
    }
  }
  return masks;
}

/** Rows `idx` of a `[B, …]` tensor. */
function rows(t: Tensor, idx: readonly number[]): Tensor {
  const per = t.data.length / t.shape[0];
  const out = new Float32Array(per * idx.length);
  idx.forEach((i, r) => out.set(t.data.subarray(i * per, (i + 1) * per), r * per));
  return tensor([idx.length, ...t.shape.slice(1)], out);
}

interface BoxStepResult extends MapsLossResult {
  box: BoxLossResult;
}

/** Checks the options against an n-step schedule; returns them with defaults. */
function resolve(opts: MifoOptions, steps: number, subjects: number) {
  check(Array.isArray(opts.boxes) && opts.boxes.length > 0, "boxes", "expected at least one box");
  opts.boxes.forEach((b, i) => checkBox(b, `boxes[${i}]`));
  check(
    opts.boxes.length <= subjects,
    "boxes",
    () => `got ${opts.boxes.length} boxes for ${subjects} target tokens (at most one box each)`,
  );
  const guidanceSteps = opts.guidanceSteps ?? Math.min(15, steps);
  integerIn(guidanceSteps, 0, steps, "guidanceSteps", `a step count of the ${steps}-step schedule`);
  const iterations = opts.iterations ?? 5;
  integerIn(iterations, 0, 1000, "iterations", "a number of gradient steps");
  const steerFrom = opts.steerFrom ?? 0;
  integerIn(steerFrom, 0, steps - 1, "steerFrom", `a step index of the ${steps}-step schedule`);
  // The default 15 on a short schedule means "never"; a value the caller gives must fit.
  const refineFrom = opts.refineFrom ?? 15;
  if (opts.refineFrom !== undefined) {
    integerIn(refineFrom, 0, steps - 1, "refineFrom", `a step index of the ${steps}-step schedule`);
  }
  const refineEvery = opts.refineEvery ?? 5;
  integerIn(refineEvery, 1, Number.MAX_SAFE_INTEGER, "refineEvery", "a period in steps");
  const clustersPerSubject = opts.clustersPerSubject ?? 3;
  integerIn(clustersPerSubject, 1, 1000, "clustersPerSubject", "a cluster count");
  const lossThreshold = opts.lossThreshold ?? 0.2;
  check(Number.isFinite(lossThreshold), "lossThreshold", `expected a number, got ${lossThreshold}`);
  return {
    guidanceSteps,
    iterations,
    steerFrom,
    refineFrom,
    refineEvery,
    clustersPerSubject,
    lossThreshold,
  };
}

/**
 * Samples `prompt` with MIFO's box control; see the module doc.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadShapesModel, mifoSynthesis } from "@attnkit/attnkit";
 * const model = await loadShapesModel();
 * // A red heart in the left half, a blue star in the right half: boxes [x0, y0, x1, y1] in [0, 1].
 * const boxes = [[0.05, 0.2, 0.45, 0.8], [0.55, 0.2, 0.95, 0.8]] as const;
 * const out = await mifoSynthesis(model, "a red heart and a blue star", { seed: 0, steps: 4, boxes });
 * assert.deepEqual(out.latents.shape, [1, 4, 16, 16]);
 * assert.equal(out.subjects.length, 2);
 * await model.release();
 * ```
 */
export async function mifoSynthesis(
  model: DiffusionModel,
  prompt: string,
  opts: MifoOptions,
): Promise<MifoResult> {
  const sampler = opts.sampler ?? defaultSampler(model, opts.steps ?? 50);
  const steps = sampler.timesteps().length;
  const allSubjects = opts.subjects ?? subjectsOf(model, prompt);
  const r = resolve(opts, steps, allSubjects.length);
  const subjects = allSubjects.slice(0, opts.boxes.length);
  subjects.forEach((s, i) => {
    check(
      s.tokens.length > 0 && s.tokens.every(Number.isInteger) && Number.isInteger(s.leading),
      `subjects[${i}]`,
      "expected integer token columns and a leading token",
    );
  });
  const eos = opts.eos === null ? undefined : opts.eos ?? eosColumn(model, prompt);
  const alphaOf = opts.alpha ?? schedule.mifoDecay();
  const etaOf = opts.stepSize ?? ((i: number) => mifoStepSize(i, Math.max(1, r.guidanceSteps)));
  const n = opts.candidates ?? 1;
  const cfg = (opts.guidance ?? 7.5) !== 1;
  const boxes = opts.boxes;

  const log: MifoStepLog[] = [];
  const refinedAt: number[] = [];
  const stats: (RefineStats | undefined)[] = new Array(n).fill(undefined);
  let masks: Uint8Array[][] | undefined; // refined, per item, at maskSize
  let maskSize: readonly [number, number] | undefined;
  let current = 0;

  const lossAt = (step: number, at: StepAt) => {
    const alpha = alphaOf(step);
    return (maps: AttentionMaps, item: number): BoxStepResult => {
      const box = boxLoss(maps, {
        tokens: subjects.map((s) => s.tokens),
        boxes,
        eos,
        alpha,
        crossScale: opts.crossScale,
        selfScale: opts.selfScale,
        sumScale: opts.sumScale,
      });
      if (!opts.extraLoss) return { value: box.value, grad: box.grad, box };
      const extra = opts.extraLoss(maps, item, at);
      return {
        value: box.value + extra.value,
        grad: addGrads(box.grad, extra.grad),
        terms: { box: box.value, extra: extra.value, ...(extra.terms ?? {}) },
        box,
      };
    };
  };

  const optimise: AdjustHook = async (e) => {
    if (e.step >= r.guidanceSteps || r.iterations === 0) return e.latents;
    const at: StepAt = {
      step: e.step,
      steps: e.steps,
      timestep: e.timestep,
      trainSteps: e.trainSteps,
    };
    const loss = lossAt(e.step, at);
    const eta = etaOf(e.step);
    const entry: MifoStepLog = { step: e.step, alpha: alphaOf(e.step), eta, iterations: [] };
    log.push(entry);
    const x = e.latents.data.slice();
    const per = x.length / e.latents.shape[0];
    const last = new Array(e.latents.shape[0]).fill(Infinity);
    for (let it = 0; it < r.iterations; it++) {
      const active = last.flatMap((v, i) => (v < r.lossThreshold ? [] : [i]));
      if (active.length === 0) break;
      let g;
      try {
        g = await adjustGrad(
          model,
          {
            ...e,
            latents: rows(tensor(e.latents.shape, x), active),
            context: rows(e.context, active),
          },
          (maps, k) => loss(maps, active[k]),
        );
      } catch (err) {
        throw err instanceof NonFiniteLossError ? err.at(e.step, active[err.item]) : err;
      }
      const normalized = g.results.map((res) => res.box.normalized);
      active.forEach((item, k) => {
        last[item] = normalized[k];
        for (let j = 0; j < per; j++) x[item * per + j] -= eta * g.grad.data[k * per + j];
      });
      entry.iterations.push({
        value: g.values,
        normalized,
        gradNorm: itemNorms(g.grad),
        items: active,
      });
    }
    return tensor(e.latents.shape, x);
  };

  const steer = opts.steer ?? true;
  const refine = steer && r.refineFrom < steps;
  const hook: AdjustHook = async (e) => {
    current = e.step;
    const x = await optimise(e);
    if (refine && e.step >= r.refineFrom && e.step % r.refineEvery === 0 && stats[0] && maskSize) {
      const size = maskSize;
      const boxMasks = boxes.map((b) => rasterBox(b, size));
      masks = stats.map((s, i) =>
        refineMasks(s!, masks?.[i] ?? boxMasks, boxMasks, size, {
          clustersPerSubject: r.clustersPerSubject,
          crossThreshold: opts.crossThreshold,
          clusterThreshold: opts.clusterThreshold,
          seed: opts.kmeansSeed,
        })
      );
      refinedAt.push(e.step);
    }
    return x;
  };

  const maskCache = new Map<string, Uint8Array[][]>();
  const masksAt = (size: readonly [number, number]): Uint8Array[][] => {
    const key = `${size[0]}x${size[1]}:${refinedAt.length}`;
    let m = maskCache.get(key);
    if (!m) {
      m = masks
        ? masks.map((item) => item.map((mask) => resizeMask(mask, maskSize!, size)))
        : new Array(n).fill(boxes.map((b) => rasterBox(b, size)));
      maskCache.set(key, m);
    }
    return m;
  };
  const steered = steer
    ? steeredModel(model, (call) => {
      if (current < r.steerFrom) return undefined;
      return boundedBias(call.layout, masksAt, {
        tokens: subjects.map((s) => s.tokens),
        items: n,
        cfg,
        eos,
        filterTokens: opts.filterTokens,
      });
    })
    : model;

  const latents = await sampleLatents(steered, prompt, {
    ...opts,
    sampler,
    taps: refine,
    adjust: hook,
    label: opts.label ?? "MIFO box control",
    onStep: refine
      ? (e) => {
        e.taps!.forEach((taps, i) => {
          const maps = accumulateMaps(taps);
          maskSize = maps.size;
          stats[i] = observe(stats[i], maps, subjects.map((s) => s.leading));
        });
      }
      : undefined,
  });
  const finalSize = maskSize ?? [model.info.latentShape[1], model.info.latentShape[2]];
  return {
    latents,
    log,
    refinedAt,
    masks: masks ?? new Array(n).fill(0).map(() => boxes.map((b) => rasterBox(b, finalSize))),
    maskSize: finalSize,
    subjects,
    ...(eos !== undefined ? { eos } : {}),
  };
}

function addGrads(
  a: MapsLossResult["grad"],
  b: MapsLossResult["grad"],
): MapsLossResult["grad"] {
  const out: MapsLossResult["grad"] = {};
  for (const k of ["self", "cross"] as const) {
    const x = a[k], y = b[k];
    if (!x || !y) {
      const t = x ?? y;
      if (t) out[k] = t;
      continue;
    }
    check(x.data.length === y.data.length, "extraLoss", `its ${k} gradient has another shape`);
    const d = new Float32Array(x.data.length);
    for (let i = 0; i < d.length; i++) d[i] = x.data[i] + y.data[i];
    out[k] = tensor(x.shape, d);
  }
  return out;
}
