/**
 * Pair similarities between soft masks for ISAC's Eq. 8-9 and the metric ablation (Table 3), each
 * with its vector-Jacobian product. Larger means more overlap for all of them:
 * - `mpo`: Eq. 7, `max_p a_p b_p`; its gradient goes to the maximising pixel only (a subgradient).
 * - `iou`: soft IoU `Σ min(a, b) / Σ max(a, b)`; 0 when both masks are all zero. Where a_p = b_p
 *   the min and max are split half and half between a and b (a subgradient).
 * - `kl`: `exp(−SKL)`, SKL the symmetric KL divergence `KL(p‖q) + KL(q‖p)` of the masks made into
 *   distributions `p = (a + ε) / Σ (a + ε)`, ε = 1e-6 so empty pixels stay finite.
 * - `mae`: `1 − mean |a − b|`; gradient 0 where a_p = b_p.
 *
 * @module
 */
import { check } from "../errors.ts";
import { expectFiniteValues } from "../finite.ts";
import { mpo } from "./mpo.ts";

/** The name of a pair similarity. */
export type SimilarityMetric = "mpo" | "iou" | "kl" | "mae";

/** Every metric name, in the order of the ablation table. */
export const SIMILARITY_METRICS: readonly SimilarityMetric[] = ["mpo", "iou", "kl", "mae"];

/** Smoothing added to every pixel before the `kl` metric normalises a mask. */
export const KL_EPSILON: number = 1e-6;

/** A similarity value; `pixel` is the MPO argmax for `mpo` and −1 for the others. */
export interface SimilarityValue {
  /** The similarity. */
  value: number;
  /** The maximising pixel (`mpo` only), else −1. */
  pixel: number;
}

/** Gradients of `g · similarity(a, b)` with respect to `a` and `b`. */
export interface SimilarityGrad {
  /** Same length as `a`. */
  da: Float64Array;
  /** Same length as `b`. */
  db: Float64Array;
}

function checkArgs(metric: SimilarityMetric, a: ArrayLike<number>, b: ArrayLike<number>): void {
  check(
    SIMILARITY_METRICS.includes(metric),
    "metric",
    () => `expected one of ${SIMILARITY_METRICS.join(", ")}, got ${JSON.stringify(metric)}`,
  );
  check(a.length > 0, "a", "expected a non-empty mask");
  check(b.length === a.length, "b", () => `expected ${a.length} values like a, got ${b.length}`);
  expectFiniteValues(a, "a");
  expectFiniteValues(b, "b");
}

/** The `metric` similarity of masks `a` and `b`. */
export function similarity(
  metric: SimilarityMetric,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
): SimilarityValue {
  checkArgs(metric, a, b);
  const n = a.length;
  switch (metric) {
    case "mpo":
      return mpo(a, b);
    case "iou": {
      let num = 0;
      let den = 0;
      for (let p = 0; p < n; p++) {
        num += Math.min(a[p], b[p]);
        den += Math.max(a[p], b[p]);
      }
      return { value: den > 0 ? num / den : 0, pixel: -1 };
    }
    case "kl":
      return { value: Math.exp(-symmetricKl(a, b).value), pixel: -1 };
    case "mae": {
      let s = 0;
      for (let p = 0; p < n; p++) s += Math.abs(a[p] - b[p]);
      return { value: 1 - s / n, pixel: -1 };
    }
  }
}

/** The VJP of {@link similarity}: gradients of `g · similarity(metric, a, b)`. */
export function similarityVjp(
  metric: SimilarityMetric,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  g = 1,
): SimilarityGrad {
  checkArgs(metric, a, b);
  const n = a.length;
  const da = new Float64Array(n);
  const db = new Float64Array(n);
  switch (metric) {
    case "mpo": {
      const { pixel } = mpo(a, b);
      da[pixel] = g * b[pixel];
      db[pixel] = g * a[pixel];
      break;
    }
    case "iou": {
      let num = 0;
      let den = 0;
      for (let p = 0; p < n; p++) {
        num += Math.min(a[p], b[p]);
        den += Math.max(a[p], b[p]);
      }
      if (!(den > 0)) break;
      // d(num/den) = dnum/den − num·dden/den².
      const gNum = g / den;
      const gDen = -g * num / (den * den);
      for (let p = 0; p < n; p++) {
        if (a[p] < b[p]) {
          da[p] = gNum;
          db[p] = gDen;
        } else if (a[p] > b[p]) {
          da[p] = gDen;
          db[p] = gNum;
        } else {
          da[p] = db[p] = 0.5 * (gNum + gDen);
        }
      }
      break;
    }
    case "kl": {
      const { value, p, q, sa, sb } = symmetricKl(a, b);
      const gJ = -g * Math.exp(-value);
      // J = Σ (p − q)(log p − log q); dJ/dp = log(p/q) + 1 − q/p, dJ/dq = log(q/p) + 1 − p/q.
      const gp = new Float64Array(n);
      const gq = new Float64Array(n);
      let dotP = 0;
      let dotQ = 0;
      for (let i = 0; i < n; i++) {
        const lr = Math.log(p[i] / q[i]);
        gp[i] = gJ * (lr + 1 - q[i] / p[i]);
        gq[i] = gJ * (-lr + 1 - p[i] / q[i]);
        dotP += gp[i] * p[i];
        dotQ += gq[i] * q[i];
      }
      // p = a' / Σ a': dp_i/da_k = (δ_ik − p_i) / Σ a'.
      for (let i = 0; i < n; i++) {
        da[i] = (gp[i] - dotP) / sa;
        db[i] = (gq[i] - dotQ) / sb;
      }
      break;
    }
    case "mae": {
      for (let p = 0; p < n; p++) {
        const s = Math.sign(a[p] - b[p]);
        da[p] = -g * s / n;
        db[p] = g * s / n;
      }
      break;
    }
  }
  return { da, db };
}

function symmetricKl(a: ArrayLike<number>, b: ArrayLike<number>) {
  const n = a.length;
  const p = new Float64Array(n);
  const q = new Float64Array(n);
  let sa = 0;
  let sb = 0;
  for (let i = 0; i < n; i++) {
    p[i] = a[i] + KL_EPSILON;
    q[i] = b[i] + KL_EPSILON;
    sa += p[i];
    sb += q[i];
  }
  let value = 0;
  for (let i = 0; i < n; i++) {
    p[i] /= sa;
    q[i] /= sb;
    value += (p[i] - q[i]) * Math.log(p[i] / q[i]);
  }
  return { value, p, q, sa, sb };
}
