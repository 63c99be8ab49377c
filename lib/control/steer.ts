/**
 * Attention steering with masks, as Bounded Attention does it (methods spec §5, used by MIFO's
 * synthesis, §4c): an additive bias on the pre-softmax scores of every attention layer, fed
 * through the denoiser's bias path (`denoise(…, { bias })`).
 *
 * - Cross-attention (conditional half only, BA's `_hide_other_subjects_from_tokens` outside
 *   guidance): every subject token is hidden from every pixel, except from the pixels of its own
 *   subject's mask; the end token is hidden from background pixels (`maskEos`). BA also hides
 *   "filter" tokens chosen by an NLTK part-of-speech tagger; there is no tagger here, so callers
 *   pass them as `filterTokens` if they want them.
 * - Self-attention (both halves, `_hide_other_subjects_from_subjects`): a pixel of subject s
 *   attends only to pixels of s (of every subject it belongs to) and to background pixels;
 *   background pixels attend to everything.
 * "Hidden" means a bias of −1e4 (BA uses the dtype's minimum): exp(−1e4) is 0 in float32, and
 * a row never loses every key (a subject pixel keeps itself, every pixel keeps the start token).
 *
 * Masks are given at one size and resized to each layer's grid with nearest-exact sampling
 * (BA's `F.interpolate(mode="nearest-exact")`); a box can also be rasterised at each layer's own
 * size (see mifo.ts). Which layers exist is learnt from one probe call with taps (batch 1), made
 * once per wrapped model.
 *
 * @module
 */
import { check } from "../errors.ts";
import { type Tensor, tensor } from "../tensor.ts";
import type { AttentionTap } from "../attention/types.ts";
import type { AttentionBias, DiffusionModel } from "../runtime/model.ts";

/** The bias that hides a key. */
export const HIDDEN: number = -1e4;

/** One attention layer's geometry, in the order of the denoiser's taps. */
export interface LayerGeometry {
  /** Self or cross attention. */
  kind: "self" | "cross";
  /** The layer's query grid `[h, w]`. */
  size: readonly [number, number];
  /** Number of keys (h·w for self, L for cross). */
  nk: number;
}

/** The geometry of every tapped layer of one batch item's taps. */
export function layoutOf(taps: readonly AttentionTap[]): LayerGeometry[] {
  return taps.map((t) => ({ kind: t.kind, size: t.size, nk: t.k.shape[1] }));
}

/** Nearest-exact resize of a `[from]` mask to `[to]`: source index ⌊(i + ½)·from/to⌋. */
export function resizeMask(
  mask: Uint8Array,
  from: readonly [number, number],
  to: readonly [number, number],
): Uint8Array {
  check(
    mask.length === from[0] * from[1],
    "mask",
    () => `expected ${from[0]}×${from[1]} values, got ${mask.length}`,
  );
  if (from[0] === to[0] && from[1] === to[1]) return mask;
  const out = new Uint8Array(to[0] * to[1]);
  for (let y = 0; y < to[0]; y++) {
    const sy = Math.min(from[0] - 1, Math.floor(((y + 0.5) * from[0]) / to[0]));
    for (let x = 0; x < to[1]; x++) {
      const sx = Math.min(from[1] - 1, Math.floor(((x + 0.5) * from[1]) / to[1]));
      out[y * to[1] + x] = mask[sy * from[1] + sx];
    }
  }
  return out;
}

/** Per-item subject masks at a layer size: `masksAt(size)[item][subject]`, `[h·w]` each. */
export type MasksAt = (size: readonly [number, number]) => readonly (readonly Uint8Array[])[];

/** Options of {@link boundedBias}. */
export interface BoundedBiasOptions {
  /** Token columns of each subject (same order as the masks). */
  tokens: readonly (readonly number[])[];
  /** Number of candidates n (the batch is 2n with classifier-free guidance, else n). */
  items: number;
  /** The batch holds an unconditional half first (classifier-free guidance). */
  cfg: boolean;
  /** End-token column, hidden from background pixels (default: none). */
  eos?: number;
  /** Further columns hidden everywhere (BA's filter tokens; default none). */
  filterTokens?: readonly number[];
  /** Steer cross-attention (default true). */
  cross?: boolean;
  /** Steer self-attention (default true). */
  self?: boolean;
  /** Which layers to steer (default all). */
  layers?: (g: LayerGeometry, index: number) => boolean;
}

/** Bounded Attention's score bias for every layer of `layout`; see the module doc. */
export function boundedBias(
  layout: readonly LayerGeometry[],
  masksAt: MasksAt,
  opts: BoundedBiasOptions,
): AttentionBias {
  const n = opts.items;
  check(Number.isInteger(n) && n >= 1, "items", `expected a positive integer, got ${n}`);
  return layout.map((g, index) => {
    if (opts.layers && !opts.layers(g, index)) return null;
    if (g.kind === "cross" ? opts.cross === false : opts.self === false) return null;
    const nq = g.size[0] * g.size[1];
    const masks = masksAt(g.size);
    check(masks.length === n, "masks", `expected masks for ${n} items, got ${masks.length}`);
    for (const m of masks) {
      check(m.length === opts.tokens.length, "masks", "expected one mask per subject");
      for (const s of m) check(s.length === nq, "masks", `expected ${nq} values per mask`);
    }
    const same = masks.every((m) => m.every((s, j) => s === masks[0][j]));
    const items = same ? [masks[0]] : masks;
    const per = nq * g.nk;
    if (g.kind === "cross") {
      // Conditional half only: zeros for the unconditional rows.
      const rows = opts.cfg ? 2 * items.length : items.length;
      const data = new Float32Array(rows * per);
      items.forEach((m, i) => {
        const base = ((opts.cfg ? items.length : 0) + i) * per;
        crossRows(data.subarray(base, base + per), m, g.nk, opts);
      });
      // One shared mask set with guidance is [uncond, cond]; the batch needs n of each.
      return same && opts.cfg && n > 1
        ? repeatHalves(tensor([2, 1, nq, g.nk], data), n)
        : tensor([rows, 1, nq, g.nk], data);
    }
    // Self: the same mask on both halves.
    const data = new Float32Array(items.length * per);
    items.forEach((m, i) => selfRows(data.subarray(i * per, (i + 1) * per), m, nq));
    if (same) return tensor([1, 1, nq, nq], data);
    const rows = opts.cfg ? 2 * n : n;
    const out = new Float32Array(rows * per);
    for (let r = 0; r < rows; r++) {
      out.set(data.subarray((r % n) * per, (r % n + 1) * per), r * per);
    }
    return tensor([rows, 1, nq, nq], out);
  });
}

/** `[2, …]` (uncond, cond) → `[2n, …]` with n copies of each half: one bias for a guided batch of n. */
export function repeatHalves(t: Tensor, n: number): Tensor {
  const per = t.data.length / 2;
  const out = new Float32Array(per * 2 * n);
  for (let i = 0; i < n; i++) {
    out.set(t.data.subarray(0, per), i * per);
    out.set(t.data.subarray(per), (n + i) * per);
  }
  return tensor([2 * n, ...t.shape.slice(1)], out);
}

function crossRows(
  out: Float32Array,
  masks: readonly Uint8Array[],
  nk: number,
  opts: BoundedBiasOptions,
): void {
  const nq = out.length / nk;
  const hidden = new Set<number>(opts.filterTokens ?? []);
  for (const cols of opts.tokens) for (const c of cols) hidden.add(c);
  for (const c of hidden) {
    check(
      Number.isInteger(c) && c >= 0 && c < nk,
      "tokens",
      `column ${c} is outside 0 … ${nk - 1}`,
    );
  }
  for (let q = 0; q < nq; q++) {
    const row = q * nk;
    for (const c of hidden) out[row + c] = HIDDEN;
    let background = true;
    masks.forEach((m, s) => {
      if (!m[q]) return;
      background = false;
      for (const c of opts.tokens[s]) out[row + c] = 0;
    });
    if (background && opts.eos !== undefined) out[row + opts.eos] = HIDDEN;
  }
}

function selfRows(out: Float32Array, masks: readonly Uint8Array[], nq: number): void {
  const fg = new Uint8Array(nq);
  for (const m of masks) for (let p = 0; p < nq; p++) if (m[p]) fg[p] = 1;
  for (let q = 0; q < nq; q++) {
    if (!fg[q]) continue;
    const allowed = new Uint8Array(nq);
    for (const m of masks) if (m[q]) { for (let k = 0; k < nq; k++) if (m[k]) allowed[k] = 1; }
    const row = q * nq;
    for (let k = 0; k < nq; k++) if (fg[k] && !allowed[k]) out[row + k] = HIDDEN;
  }
}

/** What a steering callback sees at each denoiser call. */
export interface SteerCall {
  /** Model timestep of the call. */
  timestep: number;
  /** Batch size of the call. */
  batch: number;
  /** Every tapped layer's geometry. */
  layout: readonly LayerGeometry[];
}

/**
 * The model with every `denoise` call biased by `biasFor` (no bias when it returns undefined).
 * The layer layout comes from one probe call with taps on the first batch item, made on first
 * use. `gradient` is the model's own (unbiased): latent optimisation sees unsteered attention.
 */
export function steeredModel(
  model: DiffusionModel,
  biasFor: (call: SteerCall) => AttentionBias | undefined,
): DiffusionModel {
  let layout: LayerGeometry[] | undefined;
  return {
    ...model,
    // Maps and gradients keep the Q/K route: the gradient is the unsteered model's, taken at the
    // steered call's taps, as before in-graph maps existed.
    gradientFromMaps: undefined,
    async denoise(latents, timestep, context, opts) {
      if (!layout) {
        const one = (t: Tensor) =>
          tensor([1, ...t.shape.slice(1)], t.data.slice(0, t.data.length / t.shape[0]));
        const probe = await model.denoise(one(latents), timestep, one(context), { taps: true });
        check(probe.taps !== undefined, "model", "denoise() gave no taps to learn the layout from");
        layout = layoutOf(probe.taps[0]);
      }
      const bias = biasFor({ timestep, batch: latents.shape[0], layout });
      return model.denoise(latents, timestep, context, { ...opts, ...(bias ? { bias } : {}) });
    },
  };
}
