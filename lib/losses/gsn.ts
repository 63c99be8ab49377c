/**
 * The step-selection paper's "GSN" loss (methods spec §3, GSN `IOUGSN`): Attend-and-Excite's
 * max loss plus the soft IoU loss on the same smoothed token maps,
 * `L = (λ_max · L_max + λ_iou · L_iou) / 2` (`mean: true`, the default; the plain sum otherwise).
 * The IoU term is dropped when `λ_max · L_max > deactivateIou` (default 1.0, so never while
 * L_max ≤ 1). Gradient exact as in attend_excite.ts and iou.ts.
 *
 * @module
 */
import { check } from "../errors.ts";
import { tensor } from "../tensor.ts";
import type { AttentionMaps } from "../attention/types.ts";
import { exciteOnMaps } from "./attend_excite.ts";
import { iouOnMaps, type IouOptions } from "./iou.ts";
import { tokenMaps } from "./token_maps.ts";
import type { MapsLossResult } from "./types.ts";

/** Options of {@link gsnLoss}; defaults are GSN's. */
export interface GsnOptions extends IouOptions {
  /** Weight of the max loss (default 1). */
  lambdaMax?: number;
  /** Weight of the IoU loss (default 1). */
  lambdaIou?: number;
  /** Drop the IoU term while `λ_max · L_max` exceeds this (default 1.0). */
  deactivateIou?: number;
  /** Halve the weighted sum (default true). */
  mean?: boolean;
}

/** The combined loss with its two parts (unweighted). */
export interface GsnResult extends MapsLossResult {
  /** L_max (Attend-and-Excite). */
  max: number;
  /** L_iou (0 when deactivated or with fewer than two targets). */
  iou: number;
}

/** GSN's A&E + IoU loss and its gradient with respect to `maps.cross`. */
export function gsnLoss(maps: AttentionMaps, opts: GsnOptions): GsnResult {
  const lMax = opts.lambdaMax ?? 1;
  const lIou = opts.lambdaIou ?? 1;
  const off = opts.deactivateIou ?? 1;
  check(
    [lMax, lIou, off].every(Number.isFinite),
    "opts",
    "expected finite lambdaMax, lambdaIou, deactivateIou",
  );
  const scale = (opts.mean ?? true) ? 0.5 : 1;
  const tm = tokenMaps(maps.cross, maps.size, opts);
  const ex = exciteOnMaps(tm.maps);
  const useIou = !(lMax * ex.value > off);
  const io = useIou ? iouOnMaps(tm.maps, opts.form ?? "sum", scale * lIou) : null;
  const dMaps = tm.maps.map((m, e) => {
    const a = ex.dMaps[e];
    const b = io?.dMaps[e];
    if (!a && !b) return null;
    const d = new Float64Array(m.length);
    for (let p = 0; p < d.length; p++) d[p] = (a ? scale * lMax * a[p] : 0) + (b ? b[p] : 0);
    return d;
  });
  const iou = io?.value ?? 0;
  const cross = dMaps.some((d) => d) ? tm.backward(dMaps) : tensor(maps.cross.shape);
  const value = scale * (lMax * ex.value + lIou * iou);
  return { value, grad: { cross }, max: ex.value, iou, terms: { max: ex.value, iou } };
}
