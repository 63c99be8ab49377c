/**
 * The ISAC objective (Eq. 8-10) on accumulated attention maps, with its exact gradient with
 * respect to the maps. The pipeline, with the choices the paper leaves open:
 *
 * 1. `CAn = minMax(cross)`, `SAn = minMax(self)` over the whole map (Eq. 13, appendix C.1).
 * 2. `CAprop = self · CAn` (Eq. 3). The raw self map is used: its rows are distributions, so the
 *    propagated scores stay in [0, 1]. Only the target tokens' columns are computed.
 * 3. Column-mean binarisation (Eq. 4) and the union over the target tokens give the foreground I.
 * 4. Features `[SAn[I, I] | x | y]` and K-means with K = N (seeded; see kmeans.ts).
 * 5. Masks `M = SAn[I, I] · K̄` with cluster-averaged columns (see instances.ts).
 * 6. `L_ins = max_{i<j} metric(M_i, M_j)` (Eq. 8; 0 when N < 2).
 * 7. Class maps: `CA_cls[:, i] = CAprop[:, tokens[i]]` on the foreground, 0 elsewhere, divided by
 *    its maximum over pixels so it lies in [0, 1] (all zero if that maximum is 0).
 *    `L_cls = max_{i<j} sign(i, j) · metric(CA_cls_i, CA_cls_j)` (Eq. 9; 0 when k < 2).
 * 8. `value = w.ins · L_ins + w.cls · L_cls` (Eq. 10).
 *
 * The gradient is exact for the value with the K-means assignment, the binarisation and the
 * foreground held constant (they are piecewise constant), taking subgradients at every max: the
 * maximising pair, the maximising pixel, the class-map maximum, and the min-max normalisations'
 * first argmin and argmax elements. Ties go to the lowest index.
 *
 * @module
 */
import { AttnkitError, check } from "../errors.ts";
import { expectFinite, expectShape, tensor } from "../tensor.ts";
import type { Tensor } from "../tensor.ts";
import type { AttentionMaps, AttentionMapsGrad } from "../attention/types.ts";
import { argMinMax } from "../attention/normalise.ts";
import { binariseColumnsOf } from "./binarise.ts";
import { foregroundIndices } from "./foreground.ts";
import { clusterSizes, foregroundFeatures, masksOf } from "./instances.ts";
import { kmeans } from "./kmeans.ts";
import { similarity, SIMILARITY_METRICS, similarityVjp } from "./similarity.ts";
import type { SimilarityMetric } from "./similarity.ts";

/** What to separate and bind: the classes, their instance counts and their pairwise relations. */
export interface IsacSpec {
  /** Class token columns in the cross map, one per class (length k). */
  tokens: readonly number[];
  /** Instances per class (length k); N = their sum. */
  counts: readonly number[];
  /** k × k signs: +1 repel (the default for different classes), −1 bind; the diagonal is unused. */
  signs?: readonly (readonly number[])[];
  /** K-means seed (default 0). */
  seed?: number;
  /** Pair similarity (default "mpo", the paper's). */
  metric?: SimilarityMetric;
  /** Most K-means iterations (default 100). */
  maxIter?: number;
  /** Multiplier on the clustering features' coordinate columns (default 1). */
  coordWeight?: number;
}

/** The weights of Eq. 10 at one timestep. */
export interface IsacWeights {
  /** λ_ins, the Phase 1 (instance separation) weight. */
  ins: number;
  /** λ_cls, the Phase 2 (semantic binding) weight. */
  cls: number;
}

/** The objective, its gradient and the intermediate structures worth looking at. */
export interface IsacResult {
  /** `w.ins · ins + w.cls · cls` (Eq. 10). */
  value: number;
  /** L_ins (Eq. 8), unweighted. */
  ins: number;
  /** L_cls (Eq. 9), unweighted. */
  cls: number;
  /** d value / d maps.self and d value / d maps.cross. */
  grad: AttentionMapsGrad;
  /** The foreground pixels I (ascending). */
  foreground: Int32Array;
  /** Instance of each foreground pixel, `0 … N − 1`. */
  assign: Int32Array;
  /** Soft instance masks `[F, N]`. */
  masks: Tensor;
  /** Class maps `[HW, k]`. */
  classMaps: Tensor;
  /** The instance pair attaining L_ins, or null when N < 2. */
  insPair: readonly [number, number] | null;
  /** The class pair attaining L_cls, or null when k < 2. */
  clsPair: readonly [number, number] | null;
}

interface Checked {
  hw: number;
  l: number;
  k: number;
  n: number;
  signs: number[][];
  metric: SimilarityMetric;
}

function checkInputs(maps: AttentionMaps, spec: IsacSpec, weights: IsacWeights): Checked {
  const size = maps.size;
  check(
    Array.isArray(size) && size.length === 2 && size.every((v) => Number.isInteger(v) && v > 0),
    "maps.size",
    () => `expected [H, W] of positive integers, got ${JSON.stringify(size)}`,
  );
  const hw = size[0] * size[1];
  expectShape(maps.self, [hw, hw], "maps.self", `[HW, HW] with [H, W] = [${size}]`);
  expectShape(maps.cross, [hw, -1], "maps.cross", `[HW, L] with [H, W] = [${size}]`);
  expectFinite(maps.self, "maps.self");
  expectFinite(maps.cross, "maps.cross");
  const l = maps.cross.shape[1];
  const { tokens, counts } = spec;
  check(Array.isArray(tokens) && tokens.length > 0, "spec.tokens", "expected at least one token");
  const k = tokens.length;
  check(
    tokens.every((t) => Number.isInteger(t) && t >= 0 && t < l),
    "spec.tokens",
    () => `expected token columns in 0 … ${l - 1} (L = ${l}), got [${tokens.join(", ")}]`,
  );
  check(
    Array.isArray(counts) && counts.length === k &&
      counts.every((c) => Number.isInteger(c) && c >= 1),
    "spec.counts",
    () => `expected ${k} positive integers (one per token), got ${JSON.stringify(counts)}`,
  );
  const signs: number[][] = [];
  for (let i = 0; i < k; i++) {
    signs.push([]);
    for (let j = 0; j < k; j++) {
      const s = spec.signs === undefined ? 1 : spec.signs[i]?.[j];
      check(
        i === j || s === 1 || s === -1,
        "spec.signs",
        () =>
          `expected a ${k} x ${k} array of +1 (repel) or -1 (bind), got ${
            JSON.stringify(spec.signs)
          }`,
      );
      signs[i].push(i === j ? 0 : s);
    }
  }
  const metric = spec.metric ?? "mpo";
  check(
    SIMILARITY_METRICS.includes(metric),
    "spec.metric",
    () => `expected one of ${SIMILARITY_METRICS.join(", ")}, got ${JSON.stringify(metric)}`,
  );
  check(
    Number.isFinite(weights.ins) && Number.isFinite(weights.cls),
    "weights",
    () => `expected finite { ins, cls }, got ${JSON.stringify(weights)}`,
  );
  const cw = spec.coordWeight ?? 1;
  check(
    Number.isFinite(cw) && cw >= 0,
    "spec.coordWeight",
    () => `expected a finite number ≥ 0, got ${cw}`,
  );
  const n = counts.reduce((a, b) => a + b, 0);
  return { hw, l, k, n, signs, metric };
}

/** Min, max, first argmin/argmax and 1 / range (0 for a constant map) of a tensor. */
function range(d: Float32Array) {
  const { lo, hi } = argMinMax(d);
  const span = d[hi] - d[lo];
  return { lo, hi, min: d[lo], inv: span > 0 ? 1 / span : 0 };
}

/** Column `c` of a row-major `[rows, cols]` float64 array. */
function column(d: Float64Array, rows: number, cols: number, c: number): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) out[r] = d[r * cols + c];
  return out;
}

/** The largest `sign · metric` over pairs i < j of `vectors`, and the pair (first on ties). */
function maxPair(
  vectors: readonly Float64Array[],
  metric: SimilarityMetric,
  sign: (i: number, j: number) => number,
): { value: number; pair: readonly [number, number] | null } {
  let value = 0;
  let pair: readonly [number, number] | null = null;
  for (let i = 0; i < vectors.length; i++) {
    for (let j = i + 1; j < vectors.length; j++) {
      const v = sign(i, j) * similarity(metric, vectors[i], vectors[j]).value;
      if (pair === null || v > value) {
        value = v;
        pair = [i, j];
      }
    }
  }
  return { value, pair };
}

/** ISAC's objective (Eq. 8-10) and its gradient with respect to `maps`; see the module doc. */
export function isacLoss(maps: AttentionMaps, spec: IsacSpec, weights: IsacWeights): IsacResult {
  const { hw, l, k, n, signs, metric } = checkInputs(maps, spec, weights);
  const sd = maps.self.data;
  const cd = maps.cross.data;
  const sr = range(sd);
  const cr = range(cd);

  // Eq. 3 on the distinct target columns only, with min-max normalisation of the cross map folded in.
  const cols = [...new Set(spec.tokens)];
  const colOf = spec.tokens.map((t) => cols.indexOf(t));
  const u = cols.length;
  const cn = new Float64Array(hw * u);
  for (let m = 0; m < hw; m++) {
    for (let c = 0; c < u; c++) cn[m * u + c] = (cd[m * l + cols[c]] - cr.min) * cr.inv;
  }
  const prop = new Float64Array(hw * u);
  for (let i = 0; i < hw; i++) {
    for (let m = 0; m < hw; m++) {
      const s = sd[i * hw + m];
      if (s === 0) continue;
      for (let c = 0; c < u; c++) prop[i * u + c] += s * cn[m * u + c];
    }
  }

  // Eq. 4-6: foreground, features, clustering, masks.
  const bin = binariseColumnsOf(prop, hw, u);
  const fg = foregroundIndices(bin, hw, u, cols.map((_, c) => c));
  const f = fg.length;
  if (f < n) {
    throw new AttnkitError(
      "spec.counts",
      `asks for N = ${n} instances but the foreground has only ${f} pixels`,
    );
  }
  const features = foregroundFeatures(sd, hw, fg, maps.size, sr.min, sr.inv, spec.coordWeight ?? 1);
  const { assign } = kmeans(features, n, { seed: spec.seed ?? 0, maxIter: spec.maxIter });
  const stride = f + 2;
  const masks = masksOf(features.data, stride, f, assign, n);
  const maskCols = Array.from({ length: n }, (_, c) => column(masks, f, n, c));
  const ins = maxPair(maskCols, metric, () => 1);

  // Eq. 9: class maps on the foreground, each scaled by its maximum.
  const inFg = new Uint8Array(hw);
  for (const p of fg) inFg[p] = 1;
  const classRaw = spec.tokens.map((_, c) => {
    const v = column(prop, hw, u, colOf[c]);
    for (let p = 0; p < hw; p++) if (!inFg[p]) v[p] = 0;
    return v;
  });
  const classPeak = classRaw.map((v) => argMinMax(v).hi);
  const classMaps = classRaw.map((v, c) => {
    const peak = v[classPeak[c]];
    return peak > 0 ? v.map((x) => x / peak) : new Float64Array(hw);
  });
  const cls = maxPair(classMaps, metric, (i, j) => signs[i][j]);
  const insValue = n >= 2 ? ins.value : 0;
  const clsValue = k >= 2 ? cls.value : 0;

  // Backward.
  const gSelf = new Float32Array(hw * hw);
  const gCross = new Float32Array(hw * l);
  let selfToMin = 0;
  let selfToMax = 0;
  if (weights.ins !== 0 && ins.pair && sr.inv > 0) {
    const [i, j] = ins.pair;
    const { da, db } = similarityVjp(metric, maskCols[i], maskCols[j], weights.ins);
    const sizes = clusterSizes(assign, n);
    // dSAn[I_a, I_b] = dM[a, assign[b]] / |cluster(assign[b])|; then the min-max VJP.
    for (let b = 0; b < f; b++) {
      const c = assign[b];
      if (c !== i && c !== j) continue;
      const scale = 1 / sizes[c];
      const dcol = c === i ? da : db;
      for (let a = 0; a < f; a++) {
        const g = dcol[a] * scale;
        if (g === 0) continue;
        const idx = fg[a] * hw + fg[b];
        const y = (sd[idx] - sr.min) * sr.inv;
        gSelf[idx] += g * sr.inv;
        selfToMin += g * (1 - y);
        selfToMax += g * y;
      }
    }
  }
  if (weights.cls !== 0 && cls.pair) {
    const [i, j] = cls.pair;
    const { da, db } = similarityVjp(metric, classMaps[i], classMaps[j], weights.cls * signs[i][j]);
    const dProp = new Float64Array(hw * u);
    const touched = new Set<number>();
    for (const [c, g] of [[i, da], [j, db]] as const) {
      const peakAt = classPeak[c];
      const peak = classRaw[c][peakAt];
      if (!(peak > 0)) continue;
      const raw = classRaw[c];
      let dPeak = 0;
      for (let p = 0; p < hw; p++) dPeak -= g[p] * raw[p];
      dPeak /= peak * peak;
      const col = colOf[c];
      touched.add(col);
      for (let p = 0; p < hw; p++) {
        if (inFg[p]) dProp[p * u + col] += g[p] / peak + (p === peakAt ? dPeak : 0);
      }
    }
    // Eq. 3 VJP: dself = dProp · CAnᵀ, dCAn = selfᵀ · dProp, on the touched columns only.
    const dCn = new Float64Array(hw * u);
    for (const p of fg) {
      for (const c of touched) {
        const g = dProp[p * u + c];
        if (g === 0) continue;
        const row = p * hw;
        for (let m = 0; m < hw; m++) {
          gSelf[row + m] += g * cn[m * u + c];
          dCn[m * u + c] += sd[row + m] * g;
        }
      }
    }
    if (cr.inv > 0) {
      let toMin = 0;
      let toMax = 0;
      for (let m = 0; m < hw; m++) {
        for (const c of touched) {
          const g = dCn[m * u + c];
          const y = cn[m * u + c];
          gCross[m * l + cols[c]] += g * cr.inv;
          toMin += g * (1 - y);
          toMax += g * y;
        }
      }
      gCross[cr.lo] -= toMin * cr.inv;
      gCross[cr.hi] -= toMax * cr.inv;
    }
  }
  gSelf[sr.lo] -= selfToMin * sr.inv;
  gSelf[sr.hi] -= selfToMax * sr.inv;

  const classOut = new Float32Array(hw * k);
  for (let c = 0; c < k; c++) for (let p = 0; p < hw; p++) classOut[p * k + c] = classMaps[c][p];
  return {
    value: weights.ins * insValue + weights.cls * clsValue,
    ins: insValue,
    cls: clsValue,
    grad: { self: tensor([hw, hw], gSelf), cross: tensor([hw, l], gCross) },
    foreground: fg,
    assign,
    masks: tensor([f, n], Float32Array.from(masks)),
    classMaps: tensor([hw, k], classOut),
    insPair: n >= 2 ? ins.pair : null,
    clsPair: k >= 2 ? cls.pair : null,
  };
}
