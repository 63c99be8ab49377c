/**
 * The Attend-and-Excite loss (methods spec §1) on accumulated maps, with its exact gradient:
 * `L = max_s max(0, 1 − max_p M_s[p])`, `M_s` the smoothed token-softmax map of target s
 * (token_maps.ts). Only the most neglected target counts.
 *
 * The gradient is exact away from ties, taking subgradients at the two maxima: the first target
 * attaining the loss and its first maximising pixel (ties go to the lowest index). When every
 * target peaks at 1 the loss is 0 and so is the gradient.
 *
 * Resolution: A&E reads the cross-attention of the layers whose maps are 16×16 for SD 1.x at
 * 512² (`attn_res = ceil(H/32)`, i.e. the latent / 4 level), averaged over those layers and
 * heads. The loss itself works at whatever `maps.size` it is given; which layers go into the maps
 * is chosen when the taps are accumulated (see `attendExciteSize` in resolution.ts). For the
 * embedded shapes model the 16×16 layers are its largest.
 *
 * @module
 */
import { tensor } from "../tensor.ts";
import type { AttentionMaps } from "../attention/types.ts";
import { type TokenMapOptions, tokenMaps } from "./token_maps.ts";
import type { MapsLossResult } from "./types.ts";

/** Options of {@link attendExciteLoss}: the token-map options (A&E defaults). */
export type AttendExciteOptions = TokenMapOptions;

/** The loss with what it looked at. */
export interface AttendExciteResult extends MapsLossResult {
  /** `max_p M_s[p]` per target. */
  peaks: number[];
  /** `max(0, 1 − peak)` per target. */
  perToken: number[];
  /** The target that attains the loss. */
  worst: number;
  /** Its maximising pixel (row-major in `maps.size`). */
  pixel: number;
}

/** Index and value of the first maximum of `d`. */
export function argMax(d: ArrayLike<number>): { index: number; value: number } {
  let index = 0;
  for (let i = 1; i < d.length; i++) if (d[i] > d[index]) index = i;
  return { index, value: d[index] };
}

/** The max-of-minimum loss on already processed target maps, and its cotangents on them. */
export function exciteOnMaps(
  targetMaps: readonly Float64Array[],
): Omit<AttendExciteResult, "grad"> & { dMaps: (Float64Array | null)[] } {
  const peaks: number[] = [];
  const pixels: number[] = [];
  for (const m of targetMaps) {
    const { index, value } = argMax(m);
    peaks.push(value);
    pixels.push(index);
  }
  const perToken = peaks.map((p) => Math.max(0, 1 - p));
  const worst = argMax(perToken).index;
  const value = perToken[worst];
  const dMaps: (Float64Array | null)[] = targetMaps.map(() => null);
  if (value > 0) {
    const g = new Float64Array(targetMaps[worst].length);
    g[pixels[worst]] = -1;
    dMaps[worst] = g;
  }
  return { value, peaks, perToken, worst, pixel: pixels[worst], dMaps };
}

/** Attend-and-Excite's max-of-minimum loss and its gradient with respect to `maps.cross`. */
export function attendExciteLoss(
  maps: AttentionMaps,
  opts: AttendExciteOptions,
): AttendExciteResult {
  const tm = tokenMaps(maps.cross, maps.size, opts);
  const { dMaps, ...r } = exciteOnMaps(tm.maps);
  const cross = r.value > 0 ? tm.backward(dMaps) : tensor(maps.cross.shape);
  return { ...r, grad: { cross } };
}
