/**
 * ISAC latent selection (the paper's Algorithm 2): N candidate latents denoised together, each
 * scored at every step by L_t = λ_ins(t)·L_ins + λ_cls(t)·L_cls on its own accumulated attention
 * maps, S[i] = Σ_t L_t; the candidate with the lowest S is the answer. No gradients needed.
 *
 * @module
 */
import type { KernelOptions } from "../../kernels/backend.ts";
import type { AttentionMaps } from "../attention/types.ts";
import { isacLoss, type IsacResult } from "../isac/loss.ts";
import { type Schedule, schedule as schedules } from "../schedule.ts";
import type { Tensor } from "../tensor.ts";
import type { DiffusionModel } from "../runtime/model.ts";
import { sampleLatents, type SampleOptions } from "../runtime/sample.ts";
import { isacSpecFor, type PromptSpec } from "./isac_spec.ts";
import { check } from "../errors.ts";

/** Options of {@link selectLatent}. */
export interface SelectOptions extends Omit<SampleOptions, "candidates" | "taps" | "onStep"> {
  /** Number of candidates N (default 4). */
  candidates?: number;
  /** λ schedule (default the paper's soft instance-to-semantic schedule). */
  schedule?: Schedule;
  /** A parsed spec (default: parsed from the prompt with the model's vocabulary). */
  spec?: PromptSpec;
  /** Where the attention maths runs (default: the backend picked once, WGSL on a real GPU). */
  kernels?: KernelOptions;
  /** Keep each candidate's ISAC result at these steps (for pictures). */
  keepSteps?: readonly number[];
}

/** A kept snapshot of one candidate at one step. */
export interface Snapshot {
  /** Step index the snapshot was taken at (0 = noisiest). */
  step: number;
  /** The candidate's accumulated attention maps at that step. */
  maps: AttentionMaps;
  /** ISAC's result on those maps under that step's λ weights (loss, its parts, instance masks). */
  result: IsacResult;
}

/** The outcome of a selection run. */
export interface Selection {
  /** Index of the best candidate (lowest score). */
  best: number;
  /** Σ_t L_t per candidate. */
  scores: number[];
  /** L_t per step per candidate: perStep[step][candidate]. */
  perStep: number[][];
  /** Clean latents of all candidates `[N, C, h, w]`. */
  latents: Tensor;
  /** The parsed prompt. */
  spec: PromptSpec;
  /** snapshots[candidate] holds the kept steps' maps and ISAC results. */
  snapshots: Snapshot[][];
}

/**
 * Runs ISAC latent selection for a prompt.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadShapesModel, selectLatent } from "@attnkit/attnkit";
 * const model = await loadShapesModel();
 * const sel = await selectLatent(model, "two red circles", { seed: 0, steps: 4, candidates: 2 });
 * assert.equal(sel.scores.length, 2);
 * assert.equal(sel.scores[sel.best], Math.min(...sel.scores)); // lowest accumulated ISAC loss
 * assert.deepEqual(sel.latents.shape, [2, 4, 16, 16]);
 * await model.release();
 * ```
 */
export async function selectLatent(
  model: DiffusionModel,
  prompt: string,
  opts: SelectOptions,
): Promise<Selection> {
  const n = opts.candidates ?? 4;
  check(Number.isInteger(n) && n >= 1, "candidates", `must be a positive integer, got ${n}`);
  const spec = opts.spec ?? isacSpecFor(model, prompt);
  const sched = opts.schedule ?? schedules.soft;
  const keep = new Set(opts.keepSteps ?? []);
  const scores = new Array(n).fill(0);
  const perStep: number[][] = [];
  const snapshots: Snapshot[][] = Array.from({ length: n }, () => []);
  // Losses of step t run on a macrotask queued behind step t's denoiser call, so they overlap
  // step t + 1's call; a failure surfaces when the chain is awaited.
  let pending: Promise<void> = Promise.resolve();
  let failed: unknown;
  const latents = await sampleLatents(model, prompt, {
    ...opts,
    candidates: n,
    maps: true,
    kernels: opts.kernels,
    label: opts.label ?? `ISAC select ×${n}`,
    onStep(e) {
      if (failed !== undefined) throw failed;
      const w = sched(e.timestep, e.trainSteps);
      const all = e.maps!;
      const step = e.step;
      const score = () => {
        const row: number[] = [];
        for (const [i, maps] of all.entries()) {
          const r = isacLoss(maps, spec.isac, w);
          scores[i] += r.value;
          row.push(r.value);
          if (keep.has(step)) snapshots[i].push({ step, maps, result: r });
        }
        perStep.push(row);
      };
      pending = pending.then(() =>
        new Promise<void>((resolve, reject) => {
          setTimeout(() => {
            try {
              score();
              resolve();
            } catch (err) {
              failed = err;
              reject(err);
            }
          }, 0);
        })
      );
      // Keep an early failure from being reported as unhandled before it is awaited.
      pending.catch(() => {});
    },
  });
  await pending;
  const best = scores.indexOf(Math.min(...scores));
  return { best, scores, perStep, latents, spec, snapshots };
}
