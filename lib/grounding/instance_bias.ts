/**
 * A training-free stand-in for DEIG's Detail Fusion Module (methods spec §7): "each instance
 * region sees only its own description", done as an additive cross-attention score bias through
 * this runtime's bias path (`denoise(…, { bias })`, steer.ts `steeredModel`) instead of a trained
 * gated self-attention fuser over learned object tokens. No DEIG weights are involved: the
 * instance descriptions are spans of the ordinary prompt, and the regions are DEIG-style instance
 * masks (box_tokens.ts `instanceMask`) or any masks the caller has.
 *
 * Rule, per query pixel p of a cross-attention layer and text column c:
 * - p inside at least one instance mask: c gets `penalty` when it belongs to some instance's
 *   span and to no span of an instance whose mask holds p (so a pixel sees its own instance's
 *   words, and in an overlap the words of every instance there);
 * - p in no mask, and columns in no span (start/end tokens, shared words): 0, unpenalised.
 * With `penalty` = −1e4 (steer.ts `HIDDEN`) the hidden columns get no attention; a milder penalty
 * (e.g. −2) only tilts it. Unlike Bounded Attention's bias (steer.ts `boundedBias`) the
 * background keeps every token and self-attention is left alone.
 *
 * The layout matches the bias hooks: one `[1, 1, HW, L]` tensor per cross layer (broadcast over
 * batch and heads), or with classifier-free guidance `[2n, 1, HW, L]` with the unconditional half
 * (first n rows) zero, as boundedBias does.
 *
 * @module
 */
import { check } from "../errors.ts";
import { type Box, checkBox } from "../losses/box.ts";
import type { AttentionBias } from "../runtime/model.ts";
import { HIDDEN, type LayerGeometry, repeatHalves } from "../control/steer.ts";
import { type Tensor, tensor } from "../tensor.ts";
import { instanceMask, type InstanceMaskOptions } from "./box_tokens.ts";

function checkPenalty(penalty: number): void {
  check(
    !Number.isNaN(penalty) && penalty <= 0,
    "penalty",
    `expected a number ≤ 0 (or -Infinity), got ${penalty}`,
  );
}

function checkSpans(spans: readonly (readonly number[])[], n: number, seqLen: number): void {
  check(
    Array.isArray(spans) && spans.length === n,
    "spans",
    () => `expected one token list per instance mask (${n})`,
  );
  spans.forEach((cols, j) =>
    check(
      Array.isArray(cols) && cols.every((c) => Number.isInteger(c) && c >= 0 && c < seqLen),
      `spans[${j}]`,
      () => `expected token columns in 0 … ${seqLen - 1}, got ${JSON.stringify(cols)}`,
    )
  );
}

/** Fills `out` (`[HW·L]`) with the instance bias; inputs already checked. */
function fillRows(
  out: Float32Array,
  masks: readonly Uint8Array[],
  spans: readonly (readonly number[])[],
  seqLen: number,
  penalty: number,
): void {
  const hw = out.length / seqLen;
  const owned = new Set<number>();
  for (const cols of spans) for (const c of cols) owned.add(c);
  const ownedCols = [...owned];
  const seen = new Uint8Array(seqLen);
  for (let p = 0; p < hw; p++) {
    let inside = false;
    seen.fill(0);
    masks.forEach((m, j) => {
      if (!m[p]) return;
      inside = true;
      for (const c of spans[j]) seen[c] = 1;
    });
    if (!inside) continue;
    const row = p * seqLen;
    for (const c of ownedCols) if (!seen[c]) out[row + c] = penalty;
  }
}

/** The instance cross-attention bias `[1, 1, HW, seqLen]` for masks at one layer; see the module doc. */
export function instanceCrossAttentionBias(
  masks: readonly Uint8Array[],
  spans: readonly (readonly number[])[],
  seqLen: number,
  penalty: number = HIDDEN,
): Tensor {
  check(
    Number.isInteger(seqLen) && seqLen >= 1,
    "seqLen",
    `expected a positive integer, got ${seqLen}`,
  );
  checkPenalty(penalty);
  check(Array.isArray(masks) && masks.length > 0, "masks", "expected at least one instance mask");
  const hw = masks[0]?.length;
  masks.forEach((m, j) =>
    check(
      m instanceof Uint8Array && m.length === hw && hw > 0,
      `masks[${j}]`,
      () => `expected a Uint8Array of ${hw} values like masks[0]`,
    )
  );
  checkSpans(spans, masks.length, seqLen);
  const data = new Float32Array(hw * seqLen);
  fillRows(data, masks, spans, seqLen, penalty);
  return tensor([1, 1, hw, seqLen], data);
}

/** Instance masks at a layer's `[h, w]` grid. */
export type InstanceMasksAt = (size: readonly [number, number]) => readonly Uint8Array[];

/** DEIG-style masks of `boxes` at each (square) layer size, cached per size. */
export function deigMasksAt(
  boxes: readonly Box[],
  opts: InstanceMaskOptions = {},
): InstanceMasksAt {
  check(Array.isArray(boxes) && boxes.length > 0, "boxes", "expected at least one box");
  boxes.forEach((b, j) => checkBox(b, `boxes[${j}]`));
  const cache = new Map<number, Uint8Array[]>();
  return (size) => {
    check(
      size[0] === size[1],
      "size",
      `DEIG's masks are square; got a ${size[0]}×${size[1]} layer (pass your own masksAt)`,
    );
    let m = cache.get(size[0]);
    if (!m) {
      m = boxes.map((b) => instanceMask(b, size[0], opts));
      cache.set(size[0], m);
    }
    return m;
  };
}

/** Options of {@link instanceCrossBias}. */
export interface InstanceCrossBiasOptions {
  /** Bias on hidden columns (default steer.ts `HIDDEN`, −1e4). */
  penalty?: number;
  /** Number of candidates n (the batch is 2n with guidance, else n; default 1). */
  items?: number;
  /** The batch holds an unconditional half first; it gets no bias (default false). */
  cfg?: boolean;
  /** Which cross layers to bias (default all). */
  layers?: (g: LayerGeometry, index: number) => boolean;
}

/** {@link instanceCrossAttentionBias} for every cross layer of `layout` (self layers: none). */
export function instanceCrossBias(
  layout: readonly LayerGeometry[],
  masksAt: InstanceMasksAt,
  spans: readonly (readonly number[])[],
  opts: InstanceCrossBiasOptions = {},
): AttentionBias {
  const n = opts.items ?? 1;
  check(Number.isInteger(n) && n >= 1, "items", `expected a positive integer, got ${n}`);
  const penalty = opts.penalty ?? HIDDEN;
  checkPenalty(penalty);
  return layout.map((g, index) => {
    if (g.kind !== "cross") return null;
    if (opts.layers && !opts.layers(g, index)) return null;
    const masks = masksAt(g.size);
    const hw = g.size[0] * g.size[1];
    check(
      masks.every((m) => m.length === hw),
      "masksAt",
      () => `expected masks of ${hw} values for the ${g.size[0]}×${g.size[1]} layer ${index}`,
    );
    const one = instanceCrossAttentionBias(masks, spans, g.nk, penalty);
    if (!opts.cfg) return one;
    // Unconditional half unbiased: [zeros; one], then n copies of each half.
    const halves = new Float32Array(2 * one.data.length);
    halves.set(one.data, one.data.length);
    return repeatHalves(tensor([2, 1, hw, g.nk], halves), n);
  });
}
