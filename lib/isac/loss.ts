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
 * Variants (`spec.variant`, see variant.ts for the named presets and why each exists): the
 * defaults are the pipeline above; `propagate: "self-minmax"` uses the min-max normalised self map
 * in Eq. 3 (the paper literally); `masks: "sum"` uses the paper's plain `SA_fg · K`;
 * `classNorm: "joint"` divides every class map by ONE maximum over all of them, so a class that is
 * barely attended stays small (absent) instead of being rescaled to a peak of 1, and
 * `classNorm: "none"` leaves them as propagated (the paper literally); `pairs: "mean"` averages the
 * pair similarities instead of Eq. 8-9's max; `bind` adds the attribute tokens of `spec.bind`
 * (sign −1 with their own class, +1 with other classes of another colour), either inside Eq. 9's
 * max ("in-max", the paper literally, where a −MPO never wins while a repel pair exists) or as a
 * separate term `reduce_repel(MPO) + reduce_bind(−MPO)` ("separate") that can act.
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
  /** Attribute tokens bound to a class (attribute–object binding, sign −1); used by `variant.bind`. */
  bind?: readonly IsacBinding[];
  /** Which construction of the objective (default {@link DEFAULT_VARIANT}); see variant.ts. */
  variant?: IsacVariant;
}

/** An attribute token bound to one of the spec's classes ("red" of "a red circle"). */
export interface IsacBinding {
  /** The attribute token's column in the cross map. */
  token: number;
  /** Index of the class (into `tokens`) it describes. */
  cls: number;
  /** The attribute word: an attribute repels another class only when that class lacks the word. */
  word: string;
}

/** The choices of the objective's construction that the paper leaves open or states ambiguously. */
export interface IsacVariant {
  /** Eq. 3's self map: the raw accumulated map, rows summing to 1 ("self"), or min-max normalised ("self-minmax", the paper's SA_t ∈ [0, 1]). */
  propagate?: "self" | "self-minmax";
  /** Instance masks: cluster-averaged columns ("mean") or the paper's plain `SA_fg · K` ("sum"). */
  masks?: "mean" | "sum";
  /** Class maps: each divided by its own maximum ("per-class"), all by their joint maximum ("joint"), or as propagated ("none", the paper's). */
  classNorm?: "per-class" | "joint" | "none";
  /** Reduction over pairs in Eq. 8-9: "max" (the paper's) or "mean". */
  pairs?: "max" | "mean";
  /** Attribute binding: "none", "in-max" (inside Eq. 9's max, the paper's) or "separate". */
  bind?: "none" | "in-max" | "separate";
}

/** The construction used when a spec names none (attnkit's first one). */
export const DEFAULT_VARIANT: Readonly<Required<IsacVariant>> = {
  propagate: "self",
  masks: "mean",
  classNorm: "per-class",
  pairs: "max",
  bind: "none",
};

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

/** A pair of vectors with the sign its similarity enters with. */
type SignedPair = readonly [number, number, number];

/** A reduced group of pairs: its value and each pair's weight in it (for the backward pass). */
interface Reduced {
  value: number;
  /** The pair attaining a max (first on ties), or null for an empty group or a mean. */
  pair: readonly [number, number] | null;
  /** d value / d (sign · similarity) of each pair, same order as the group. */
  weights: number[];
}

/** `max` or `mean` over a group of `sign · metric(v_a, v_b)` (0 for an empty group). */
function reducePairs(
  vectors: readonly Float64Array[],
  group: readonly SignedPair[],
  metric: SimilarityMetric,
  how: "max" | "mean",
): Reduced {
  const weights = new Array(group.length).fill(0);
  if (group.length === 0) return { value: 0, pair: null, weights };
  const vals = group.map(([a, b, sg]) => sg * similarity(metric, vectors[a], vectors[b]).value);
  if (how === "mean") {
    weights.fill(1 / group.length);
    return { value: vals.reduce((x, y) => x + y, 0) / group.length, pair: null, weights };
  }
  let best = 0;
  for (let q = 1; q < vals.length; q++) if (vals[q] > vals[best]) best = q;
  weights[best] = 1;
  return { value: vals[best], pair: [group[best][0], group[best][1]], weights };
}

/** The variant with every field filled in. */
export function resolveVariant(v: IsacVariant | undefined): Required<IsacVariant> {
  return { ...DEFAULT_VARIANT, ...(v ?? {}) };
}

/**
 * The class-term pair groups: class–class pairs with `signs`, and with `bind` the attribute maps
 * (indices k …) bound (−1) to their class and repelling (+1) every other class that lacks the
 * same attribute word. "in-max" puts all pairs in one group (Eq. 9 literally); "separate" gives
 * the repel pairs and the bind pairs a group each, so a bind pair is reduced among its own kind.
 */
function classGroups(
  k: number,
  signs: number[][],
  bind: readonly IsacBinding[],
  mode: Required<IsacVariant>["bind"],
): SignedPair[][] {
  const repel: SignedPair[] = [];
  for (let i = 0; i < k; i++) for (let j = i + 1; j < k; j++) repel.push([i, j, signs[i][j]]);
  if (mode === "none" || bind.length === 0) return [repel];
  const bound: SignedPair[] = [];
  bind.forEach((b, a) => {
    bound.push([k + a, b.cls, -1]);
    for (let c = 0; c < k; c++) {
      if (c === b.cls) continue;
      if (bind.some((o) => o.cls === c && o.word === b.word)) continue;
      repel.push([k + a, c, 1]);
    }
  });
  return mode === "in-max" ? [[...repel, ...bound]] : [repel, bound];
}

/** ISAC's objective (Eq. 8-10) and its gradient with respect to `maps`; see the module doc. */
export function isacLoss(maps: AttentionMaps, spec: IsacSpec, weights: IsacWeights): IsacResult {
  const { hw, l, k, n, signs, metric } = checkInputs(maps, spec, weights);
  const variant = resolveVariant(spec.variant);
  const bind = variant.bind === "none" ? [] : (spec.bind ?? []);
  for (const [i, b] of bind.entries()) {
    check(
      Number.isInteger(b.token) && b.token >= 0 && b.token < l && Number.isInteger(b.cls) &&
        b.cls >= 0 && b.cls < k,
      `spec.bind[${i}]`,
      () => `expected a token column < ${l} and a class index < ${k}, got ${JSON.stringify(b)}`,
    );
  }
  const sd = maps.self.data;
  const cd = maps.cross.data;
  const sr = range(sd);
  const cr = range(cd);
  // Eq. 3 with the raw self map (rows are distributions) or, the paper literally, SA_t min-maxed.
  const selfMinMax = variant.propagate === "self-minmax";
  const sAt = selfMinMax ? (idx: number) => (sd[idx] - sr.min) * sr.inv : (idx: number) => sd[idx];

  // Eq. 3 on the distinct target columns only (class tokens, then bound attributes), with the
  // min-max normalisation of the cross map folded in.
  const mapTokens = [...spec.tokens, ...bind.map((b) => b.token)];
  const cols = [...new Set(mapTokens)];
  const colOf = mapTokens.map((t) => cols.indexOf(t));
  const classCols = [...new Set(spec.tokens.map((t) => cols.indexOf(t)))];
  const u = cols.length;
  const cn = new Float64Array(hw * u);
  for (let m = 0; m < hw; m++) {
    for (let c = 0; c < u; c++) cn[m * u + c] = (cd[m * l + cols[c]] - cr.min) * cr.inv;
  }
  const prop = new Float64Array(hw * u);
  for (let i = 0; i < hw; i++) {
    for (let m = 0; m < hw; m++) {
      const s = sAt(i * hw + m);
      if (s === 0) continue;
      for (let c = 0; c < u; c++) prop[i * u + c] += s * cn[m * u + c];
    }
  }

  // Eq. 4-6: foreground (from the class tokens only), features, clustering, masks.
  const bin = binariseColumnsOf(prop, hw, u);
  const fg = foregroundIndices(bin, hw, u, classCols);
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
  const sumMasks = variant.masks === "sum";
  const masks = masksOf(features.data, stride, f, assign, n, sumMasks);
  const maskCols = Array.from({ length: n }, (_, c) => column(masks, f, n, c));
  const insPairs: SignedPair[] = [];
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) insPairs.push([i, j, 1]);
  const ins = reducePairs(maskCols, insPairs, metric, variant.pairs);

  // Eq. 9: class (and bound attribute) maps on the foreground, scaled per `classNorm`.
  const inFg = new Uint8Array(hw);
  for (const p of fg) inFg[p] = 1;
  const raw = mapTokens.map((_, c) => {
    const v = column(prop, hw, u, colOf[c]);
    for (let p = 0; p < hw; p++) if (!inFg[p]) v[p] = 0;
    return v;
  });
  // peakOf[c]: the (map, pixel) whose value divides map c, or null when it is not rescaled.
  const peakOf: ({ map: number; pixel: number } | null)[] = raw.map((v, c) => {
    if (variant.classNorm === "none") return null;
    if (variant.classNorm === "per-class") return { map: c, pixel: argMinMax(v).hi };
    let best = { map: 0, pixel: argMinMax(raw[0]).hi };
    for (let d = 1; d < raw.length; d++) {
      const hi = argMinMax(raw[d]).hi;
      if (raw[d][hi] > raw[best.map][best.pixel]) best = { map: d, pixel: hi };
    }
    return best;
  });
  const classMaps = raw.map((v, c) => {
    const pk = peakOf[c];
    if (!pk) return v.slice();
    const peak = raw[pk.map][pk.pixel];
    return peak > 0 ? v.map((x) => x / peak) : new Float64Array(hw);
  });
  const groups = classGroups(k, signs, bind, variant.bind);
  const reduced = groups.map((g) => reducePairs(classMaps, g, metric, variant.pairs));
  const insValue = n >= 2 ? ins.value : 0;
  const clsValue = reduced.reduce((a, r) => a + r.value, 0);
  const clsPair = k >= 2 ? (reduced[0].pair ?? (variant.pairs === "max" ? null : [0, 1])) : null;

  // Backward.
  const gSelf = new Float32Array(hw * hw);
  const gCross = new Float32Array(hw * l);
  let selfToMin = 0;
  let selfToMax = 0;
  if (weights.ins !== 0 && n >= 2 && sr.inv > 0) {
    const sizes = clusterSizes(assign, n);
    const dMask = Array.from({ length: n }, () => new Float64Array(f));
    insPairs.forEach(([i, j], q) => {
      const w = ins.weights[q];
      if (w === 0) return;
      const { da, db } = similarityVjp(metric, maskCols[i], maskCols[j], weights.ins * w);
      for (let a = 0; a < f; a++) {
        dMask[i][a] += da[a];
        dMask[j][a] += db[a];
      }
    });
    // dSAn[I_a, I_b] = dM[a, assign[b]] (/ |cluster(assign[b])| for mean masks); then min-max.
    for (let b = 0; b < f; b++) {
      const c = assign[b];
      const scale = sumMasks ? 1 : 1 / sizes[c];
      const dcol = dMask[c];
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
  if (weights.cls !== 0 && reduced.some((r) => r.weights.some((w) => w !== 0))) {
    const dMap = raw.map(() => new Float64Array(hw));
    groups.forEach((g, gi) => {
      g.forEach(([a, b, sg], q) => {
        const w = reduced[gi].weights[q];
        if (w === 0) return;
        const { da, db } = similarityVjp(metric, classMaps[a], classMaps[b], weights.cls * sg * w);
        for (let p = 0; p < hw; p++) {
          dMap[a][p] += da[p];
          dMap[b][p] += db[p];
        }
      });
    });
    // Through the scaling: map_c = raw_c / raw[peak], dRaw_c = dMap_c / peak, and the peak pixel
    // collects −Σ dMap_c · raw_c / peak².
    const dRaw = raw.map(() => new Float64Array(hw));
    raw.forEach((v, c) => {
      const pk = peakOf[c];
      if (!pk) {
        dRaw[c].set(dMap[c]);
        return;
      }
      const peak = raw[pk.map][pk.pixel];
      if (!(peak > 0)) return;
      let dPeak = 0;
      for (let p = 0; p < hw; p++) {
        dRaw[c][p] += dMap[c][p] / peak;
        dPeak -= dMap[c][p] * v[p];
      }
      dRaw[pk.map][pk.pixel] += dPeak / (peak * peak);
    });
    const dProp = new Float64Array(hw * u);
    const touched = new Set<number>();
    dRaw.forEach((d, c) => {
      const col = colOf[c];
      for (let p = 0; p < hw; p++) {
        if (inFg[p] && d[p] !== 0) {
          dProp[p * u + col] += d[p];
          touched.add(col);
        }
      }
    });
    // Eq. 3 VJP: dS = dProp · CAnᵀ, dCAn = Sᵀ · dProp, on the touched columns only; with the
    // min-max normalised self map, dS goes on through that normalisation.
    const dCn = new Float64Array(hw * u);
    for (const p of fg) {
      for (const c of touched) {
        const g = dProp[p * u + c];
        if (g === 0) continue;
        const row = p * hw;
        for (let m = 0; m < hw; m++) {
          const gs = g * cn[m * u + c];
          if (selfMinMax) {
            const y = (sd[row + m] - sr.min) * sr.inv;
            gSelf[row + m] += gs * sr.inv;
            selfToMin += gs * (1 - y);
            selfToMax += gs * y;
          } else {
            gSelf[row + m] += gs;
          }
          dCn[m * u + c] += sAt(row + m) * g;
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
    insPair: n >= 2 ? (ins.pair ?? (variant.pairs === "max" ? null : [0, 1])) : null,
    clsPair,
  };
}
