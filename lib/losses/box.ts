/**
 * MIFO's synthesis box loss (MIFO §3.3, methods spec §4c), a Bounded-Attention in-box reward plus
 * an out-of-box penalty, on accumulated maps, with its exact gradient.
 *
 * For subject s with region b_s (its box as a mask at `maps.size`) and background B (pixels
 * outside every region):
 * - cross: `fg_s = Σ_{q∈b_s, k∈ctx_s} cross[q, k]`, `bg_s = Σ_{q∈B, k∈ctx_s} cross[q, k]`, where
 *   ctx_s is the subject's token columns plus the end token (`eos`, when given);
 * - self: the same with ctx_s = the key pixels of b_s.
 * `L_s = (1 − fg_s / (fg_s + bg_s))² + α · log(1 + bg_s)`, and
 * `L = crossScale · Σ_s L_s^cross + selfScale · Σ_s L_s^self` (1.5 and 0.5 by default);
 * `normalized = L / S` is what MIFO compares with its early-stopping threshold (0.2).
 *
 * Where this differs from MIFO's code: MIFO sums fg and bg over heads and over the pixels of each
 * loss layer at its own resolution and averages over layers; here the maps are already averaged
 * over heads and layers (and upsampled to `maps.size`), so fg and bg are smaller by about the head
 * count. The reward term is a ratio and does not change; the penalty `log(1 + bg)` does. Pass
 * `sumScale` (e.g. the head count) to multiply fg and bg back before the loss.
 *
 * A box `[x0, y0, x1, y1]` in [0, 1] becomes rows `round(y0·H) … round(y1·H) − 1` and columns
 * `round(x0·W) … round(x1·W) − 1`, with Python's round-half-to-even as in MIFO's code.
 *
 * @module
 */
import { roundHalfEven } from "../samplers/timesteps.ts";
import { AttnkitError, check } from "../errors.ts";
import { expectFinite, expectShape, tensor } from "../tensor.ts";
import type { Tensor } from "../tensor.ts";
import type { AttentionMaps } from "../attention/types.ts";
import { checkCross } from "./token_maps.ts";
import type { MapsLossResult, TokenColumns } from "./types.ts";

/** A box `[x0, y0, x1, y1]`, normalised to [0, 1], x to the right and y down. */
export type Box = readonly [number, number, number, number];

/** Options of {@link boxLoss}; scales default to MIFO's. */
export interface BoxLossOptions {
  /** Target token columns, one entry per subject (an array is a multi-token subject). */
  tokens: readonly TokenColumns[];
  /** `boxes[i]` belongs to `tokens[i]`; at most one per target (targets without one are free). */
  boxes: readonly Box[];
  /** Masks `[H·W]` (non-zero = inside) replacing the boxes, e.g. refined by clustering. */
  regions?: readonly Uint8Array[];
  /** Column of the end token, added to every subject's cross context (MIFO does). */
  eos?: number;
  /** Penalty weight α (MIFO decays it with `schedule.mifoDecay`). */
  alpha: number;
  /** Weight of the cross terms (default 1.5). */
  crossScale?: number;
  /** Weight of the self terms (default 0.5; 0 skips the self map). */
  selfScale?: number;
  /** Multiplier on fg and bg before the loss (default 1; see the module doc). */
  sumScale?: number;
}

/** One subject's sums and loss on one map. */
export interface BoxTerm {
  /** Attention mass inside the subject's box (region). */
  fg: number;
  /** Attention mass outside it. */
  bg: number;
  /** `(1 − fg/(fg+bg))² + α·log(1 + bg)`, unweighted. */
  loss: number;
}

/** The loss with its per-subject parts. */
export interface BoxLossResult extends MapsLossResult {
  /** `value / S`, S the number of boxed subjects. */
  normalized: number;
  /** Cross terms per subject. */
  cross: BoxTerm[];
  /** Self terms per subject (empty when the self term is off). */
  self: BoxTerm[];
}

/** Checks one box: four finite numbers in [0, 1] with x1 > x0 and y1 > y0. */
export function checkBox(box: Box, argument: string): void {
  check(
    Array.isArray(box) && box.length === 4 &&
      box.every((v) => typeof v === "number" && Number.isFinite(v)),
    argument,
    () => `expected [x0, y0, x1, y1], got ${JSON.stringify(box)}`,
  );
  check(
    box.every((v) => v >= 0 && v <= 1),
    argument,
    () => `expected coordinates in [0, 1], got ${JSON.stringify(box)}`,
  );
  check(
    box[2] > box[0] && box[3] > box[1],
    argument,
    () => `expected a box of positive area (x1 > x0, y1 > y0), got ${JSON.stringify(box)}`,
  );
}

/** The `[H·W]` mask of a (checked) box at `[H, W]`; may be empty for a box thinner than a pixel. */
export function rasterBox(box: Box, size: readonly [number, number]): Uint8Array {
  const [h, w] = size;
  const y0 = roundHalfEven(box[1] * h), y1 = roundHalfEven(box[3] * h);
  const x0 = roundHalfEven(box[0] * w), x1 = roundHalfEven(box[2] * w);
  const m = new Uint8Array(h * w);
  for (let y = y0; y < y1; y++) if (x1 > x0) m.fill(1, y * w + x0, y * w + x1);
  return m;
}

/** The `[H·W]` mask of a box at spatial size `[H, W]`; throws if it covers no pixel. */
export function boxMask(box: Box, size: readonly [number, number], argument = "box"): Uint8Array {
  checkBox(box, argument);
  const m = rasterBox(box, size);
  if (!m.some((v) => v !== 0)) {
    throw new AttnkitError(
      argument,
      `box ${JSON.stringify(box)} covers no pixel of the ${size[0]}×${size[1]} attention grid`,
    );
  }
  return m;
}

/** Checks boxes against targets; returns one mask per boxed subject at `size`. */
export function subjectRegions(
  tokens: readonly TokenColumns[],
  boxes: readonly Box[],
  size: readonly [number, number],
  regions?: readonly Uint8Array[],
): Uint8Array[] {
  check(Array.isArray(boxes) && boxes.length > 0, "boxes", "expected at least one box");
  check(
    boxes.length <= tokens.length,
    "boxes",
    () => `got ${boxes.length} boxes for ${tokens.length} target tokens (at most one box each)`,
  );
  const masks = boxes.map((b, i) => boxMask(b, size, `boxes[${i}]`));
  if (!regions) return masks;
  const hw = size[0] * size[1];
  check(
    regions.length === boxes.length,
    "regions",
    () => `expected ${boxes.length} masks (one per box), got ${regions.length}`,
  );
  return regions.map((r, i) => {
    check(
      r instanceof Uint8Array && r.length === hw,
      `regions[${i}]`,
      () => `expected a Uint8Array of ${hw} values`,
    );
    return r.some((v) => v !== 0) ? r : masks[i];
  });
}

interface Sums {
  fg: number;
  bg: number;
}

/** `(1 − r)² + α log(1 + c·bg)` with `r = fg / (fg + bg)`, and d/dfg, d/dbg of it. */
function term(s: Sums, alpha: number, c: number): BoxTerm & { dfg: number; dbg: number } {
  const fg = c * s.fg, bg = c * s.bg;
  const tot = fg + bg;
  const r = tot > 0 ? fg / tot : 0;
  const loss = (1 - r) ** 2 + alpha * Math.log1p(bg);
  const dr = tot > 0 ? -2 * (1 - r) / (tot * tot) : 0;
  return {
    fg,
    bg,
    loss,
    dfg: c * dr * bg,
    dbg: c * (-dr * fg + alpha / (1 + bg)),
  };
}

/** MIFO's box loss and its gradient with respect to `maps.cross` and `maps.self`. */
export function boxLoss(maps: AttentionMaps, opts: BoxLossOptions): BoxLossResult {
  const [h, w, l] = checkCross(maps.cross, maps.size);
  const hw = h * w;
  const alpha = opts.alpha;
  const cs = opts.crossScale ?? 1.5;
  const ss = opts.selfScale ?? 0.5;
  const c = opts.sumScale ?? 1;
  check(Number.isFinite(alpha) && alpha >= 0, "alpha", `expected α ≥ 0, got ${alpha}`);
  check(
    [cs, ss].every(Number.isFinite) && Number.isFinite(c) && c > 0,
    "opts",
    "expected finite crossScale, selfScale and a positive sumScale",
  );
  check(Array.isArray(opts.tokens) && opts.tokens.length > 0, "tokens", "expected a target");
  const groups = opts.tokens.map((t, i) => {
    const cols = typeof t === "number" ? [t] : [...t];
    check(
      cols.length > 0 && cols.every((x) => Number.isInteger(x) && x >= 0 && x < l),
      `tokens[${i}]`,
      () => `expected token columns in 0 … ${l - 1}, got ${JSON.stringify(t)}`,
    );
    return cols;
  });
  if (opts.eos !== undefined) {
    check(
      Number.isInteger(opts.eos) && opts.eos >= 0 && opts.eos < l,
      "eos",
      `expected a column in 0 … ${l - 1}, got ${opts.eos}`,
    );
  }
  const regions = subjectRegions(opts.tokens, opts.boxes, maps.size, opts.regions);
  const s = regions.length;
  const background = new Uint8Array(hw).fill(1);
  for (const r of regions) for (let p = 0; p < hw; p++) if (r[p]) background[p] = 0;

  // Cross terms.
  const cd = maps.cross.data;
  const gCross = new Float32Array(hw * l);
  const crossTerms: BoxTerm[] = [];
  let value = 0;
  regions.forEach((region, i) => {
    const ctx = [...new Set([...groups[i], ...(opts.eos !== undefined ? [opts.eos] : [])])];
    const sums: Sums = { fg: 0, bg: 0 };
    for (let p = 0; p < hw; p++) {
      if (!region[p] && !background[p]) continue;
      let v = 0;
      for (const k of ctx) v += cd[p * l + k];
      if (region[p]) sums.fg += v;
      else sums.bg += v;
    }
    const t = term(sums, alpha, c);
    crossTerms.push({ fg: t.fg, bg: t.bg, loss: t.loss });
    value += cs * t.loss;
    if (cs === 0) return;
    for (let p = 0; p < hw; p++) {
      const g = region[p] ? cs * t.dfg : background[p] ? cs * t.dbg : 0;
      if (g === 0) continue;
      for (const k of ctx) gCross[p * l + k] += g;
    }
  });

  // Self terms.
  const selfTerms: BoxTerm[] = [];
  let gSelf: Tensor | undefined;
  if (ss !== 0) {
    expectShape(maps.self, [hw, hw], "maps.self", `[HW, HW] with [H, W] = [${maps.size}]`);
    expectFinite(maps.self, "maps.self");
    const sd = maps.self.data;
    const gs = new Float32Array(hw * hw);
    regions.forEach((region) => {
      const keys: number[] = [];
      for (let p = 0; p < hw; p++) if (region[p]) keys.push(p);
      const sums: Sums = { fg: 0, bg: 0 };
      for (let q = 0; q < hw; q++) {
        if (!region[q] && !background[q]) continue;
        let v = 0;
        for (const k of keys) v += sd[q * hw + k];
        if (region[q]) sums.fg += v;
        else sums.bg += v;
      }
      const t = term(sums, alpha, c);
      selfTerms.push({ fg: t.fg, bg: t.bg, loss: t.loss });
      value += ss * t.loss;
      for (let q = 0; q < hw; q++) {
        const g = region[q] ? ss * t.dfg : background[q] ? ss * t.dbg : 0;
        if (g === 0) continue;
        for (const k of keys) gs[q * hw + k] += g;
      }
    });
    gSelf = tensor([hw, hw], gs);
  }
  return {
    value,
    normalized: value / s,
    grad: { cross: tensor([hw, l], gCross), ...(gSelf ? { self: gSelf } : {}) },
    cross: crossTerms,
    self: selfTerms,
  };
}
