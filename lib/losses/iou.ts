/**
 * The soft IoU loss between target maps used by the step-selection paper (GSN `IOUGSN`, after
 * A-Star; methods spec §3): on the same smoothed token-softmax maps as Attend-and-Excite,
 * `L_iou = mean over pairs e < f of Σ_p min(A_e, A_f) / Σ_p (A_e + A_f)`, 0 with fewer than two
 * targets. With that denominator identical maps score 1/2, not 1 (range [0, 1/2]).
 * `form: "union"` uses `Σ_p max(A_e, A_f)` instead, the textbook soft IoU (identical maps → 1).
 * A zero denominator gives 0.
 *
 * The gradient is exact away from ties; where `A_e[p] = A_f[p]` the min (and max) is split half
 * and half between the two maps (a subgradient).
 *
 * @module
 */
import { check } from "../errors.ts";
import { tensor } from "../tensor.ts";
import type { AttentionMaps } from "../attention/types.ts";
import { type TokenMapOptions, tokenMaps } from "./token_maps.ts";
import type { MapsLossResult } from "./types.ts";

/** The denominator of the soft IoU: `Σ (a + b)` (GSN, the default) or `Σ max(a, b)`. */
export type IouForm = "sum" | "union";

/** Options of {@link iouLoss}: the token-map options plus the IoU form. */
export interface IouOptions extends TokenMapOptions {
  /** Denominator (default "sum", the paper's). */
  form?: IouForm;
}

/** The loss with every pair's IoU. */
export interface IouResult extends MapsLossResult {
  /** `pairs[k] = [e, f, iou]` for every e < f. */
  pairs: [number, number, number][];
}

/** Soft IoU of two maps and its gradients scaled by `g`. */
export function softIou(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  form: IouForm = "sum",
  g = 1,
): { value: number; da: Float64Array; db: Float64Array } {
  check(b.length === a.length, "b", () => `expected ${a.length} values like a, got ${b.length}`);
  const n = a.length;
  let num = 0;
  let den = 0;
  for (let p = 0; p < n; p++) {
    num += Math.min(a[p], b[p]);
    den += form === "sum" ? a[p] + b[p] : Math.max(a[p], b[p]);
  }
  const da = new Float64Array(n);
  const db = new Float64Array(n);
  if (!(den > 0)) return { value: 0, da, db };
  const gNum = g / den;
  const gDen = -g * num / (den * den);
  for (let p = 0; p < n; p++) {
    // d min / d a, d max / d a (ties split evenly).
    const minA = a[p] < b[p] ? 1 : a[p] > b[p] ? 0 : 0.5;
    const denA = form === "sum" ? 1 : 1 - minA;
    const denB = form === "sum" ? 1 : minA;
    da[p] = gNum * minA + gDen * denA;
    db[p] = gNum * (1 - minA) + gDen * denB;
  }
  return { value: num / den, da, db };
}

/** The mean pairwise soft IoU of processed target maps, with cotangents on them. */
export function iouOnMaps(
  targetMaps: readonly Float64Array[],
  form: IouForm = "sum",
  g = 1,
): { value: number; pairs: [number, number, number][]; dMaps: (Float64Array | null)[] } {
  check(form === "sum" || form === "union", "form", `expected "sum" or "union", got ${form}`);
  const k = targetMaps.length;
  const pairs: [number, number, number][] = [];
  const dMaps: (Float64Array | null)[] = targetMaps.map(() => null);
  const count = (k * (k - 1)) / 2;
  if (count === 0) return { value: 0, pairs, dMaps };
  let sum = 0;
  for (let e = 0; e < k; e++) {
    for (let f = e + 1; f < k; f++) {
      const r = softIou(targetMaps[e], targetMaps[f], form, g / count);
      pairs.push([e, f, r.value]);
      sum += r.value;
      for (const [i, d] of [[e, r.da], [f, r.db]] as const) {
        const acc = dMaps[i] ?? (dMaps[i] = new Float64Array(d.length));
        for (let p = 0; p < d.length; p++) acc[p] += d[p];
      }
    }
  }
  return { value: sum / count, pairs, dMaps };
}

/** The step-selection paper's IoU loss and its gradient with respect to `maps.cross`. */
export function iouLoss(maps: AttentionMaps, opts: IouOptions): IouResult {
  const tm = tokenMaps(maps.cross, maps.size, opts);
  const r = iouOnMaps(tm.maps, opts.form ?? "sum");
  const cross = r.pairs.length > 0 ? tm.backward(r.dMaps) : tensor(maps.cross.shape);
  return { value: r.value, grad: { cross }, pairs: r.pairs };
}
