/**
 * SynGen's syntactic-binding loss (Rassin et al., "Linguistic Binding in Diffusion Models:
 * Enhancing Attribute Correspondence through Attention Map Alignment", NeurIPS 2023; reference
 * code `RoyiRa/Syntax-Guided-Generation@1480178`, `compute_loss.py` and
 * `syngen_diffusion_pipeline.py` `_attribution_loss` / `_calculate_losses`), with its exact
 * gradient with respect to the accumulated cross map.
 *
 * Each token's map is its raw cross-attention column (no token softmax, no smoothing) read as a
 * distribution over the pixels: `P_t = A[:, t] / Σ_p A[p, t]` (the code builds a
 * `torch.distributions.Categorical` from `100·A[:, :, t]`; the 100 cancels in the
 * normalisation). The distance is the symmetric KL `d(a, b) = (KL(P_a‖P_b) + KL(P_b‖P_a)) / 2`,
 * with torch's Categorical details: log-probabilities of probabilities clamped to
 * [ε, 1 − ε] (ε = float32 machine epsilon), a term with P = 0 counts 0 and one with Q = 0 counts
 * +∞.
 *
 * For each subtree (a noun and its modifiers, as the parser pairs them), with `O` the prompt's
 * tokens outside the subtree (start and end tokens excluded):
 * - with modifiers, for each modifier m:
 *   positive `d(m, noun)` (the maximum over the word pieces of both, when a word has several) +
 *   negative `(−mean_{o∈O} d(m, o) − mean_{o∈O} d(noun, o)) / 2` (the maximum over a word's pieces
 *   inside the mean); both means are 0 when O is empty;
 * - without modifiers (the reference's `include_entities`): the noun's negative term alone.
 * The loss is the sum over subtrees and modifiers. Where several pieces tie for a maximum the
 * first one takes the gradient.
 *
 * Departure: the maps are read at the model's A&E resolution (SynGen's `attn_res` is the same
 * `ceil(W/32)` rule; 16×16 on the embedded model), layer- and head-averaged as diffusers'
 * `AttentionStore.aggregate_attention`.
 *
 * @module
 */
import { check } from "../errors.ts";
import { tensor } from "../tensor.ts";
import type { AttentionMaps } from "../attention/types.ts";
import { checkCross } from "./token_maps.ts";
import type { MapsLossResult, TokenColumns } from "./types.ts";

/** One noun with the modifiers bound to it. */
export interface SynGenSubtree {
  /** The noun's token column(s) (several for a word split into pieces). */
  readonly noun: TokenColumns;
  /** Each modifier's token column(s); empty for an entity with no modifier. */
  readonly modifiers: readonly TokenColumns[];
}

/** Options of {@link synGenLoss}. */
export interface SynGenOptions {
  /** The noun–modifier subtrees. */
  readonly subtrees: readonly SynGenSubtree[];
  /** Every prompt token column (start and end tokens excluded): the pool of "outside" tokens. */
  readonly promptTokens: readonly number[];
}

/** The loss with its parts. */
export interface SynGenResult extends MapsLossResult {
  /** Sum of the positive (pull) terms. */
  positive: number;
  /** Sum of the negative (push) terms (≤ 0). */
  negative: number;
  /** Named parts, checked for NaN by `latentGrad`. */
  terms: { positive: number; negative: number };
}

/** float32 machine epsilon: torch's `clamp_probs` bound for float32 probabilities. */
const F32_EPS = 1.1920928955078125e-7;

/** A column's pixel distribution with its clamped logs. */
interface Dist {
  col: number;
  sum: number;
  p: Float64Array;
  logp: Float64Array;
  inside: Uint8Array;
}

/**
 * The symmetric KL between two pixel distributions and its gradients with respect to each one's
 * (normalised) probabilities (see the module doc for the clamping and zero conventions). The
 * inputs are any positive weights; each is normalised to sum 1 first.
 *
 * @example
 * ```ts
 * import { symmetricKl } from "@attnkit/attnkit";
 * symmetricKl([1, 1], [1, 1]).value; // 0
 * symmetricKl([1, 1], [1, 3]).value; // ≈ 0.1373 nats
 * ```
 */
export function symmetricKl(
  p: ArrayLike<number>,
  q: ArrayLike<number>,
): { value: number; dp: Float64Array; dq: Float64Array } {
  check(p.length === q.length && p.length > 0, "q", `expected ${p.length} values, got ${q.length}`);
  const a = distOf(p, -1), b = distOf(q, -1);
  const dp = new Float64Array(p.length), dq = new Float64Array(p.length);
  const value = (klInto(a, b, dp, dq, 0.5) + klInto(b, a, dq, dp, 0.5)) / 2;
  return { value, dp, dq };
}

function distOf(col: ArrayLike<number>, index: number): Dist {
  let sum = 0;
  for (let i = 0; i < col.length; i++) sum += col[i];
  const n = col.length;
  const p = new Float64Array(n), logp = new Float64Array(n), inside = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    p[i] = col[i] / sum;
    const c = Math.min(Math.max(p[i], F32_EPS), 1 - F32_EPS);
    inside[i] = c === p[i] ? 1 : 0;
    logp[i] = Math.log(c);
  }
  return { col: index, sum, p, logp, inside };
}

/** KL(a‖b); adds `scale`·d/d a.p into `da` and `scale`·d/d b.p into `db`. */
function klInto(a: Dist, b: Dist, da: Float64Array, db: Float64Array, scale: number): number {
  let s = 0;
  for (let i = 0; i < a.p.length; i++) {
    if (a.p[i] === 0) continue;
    if (b.p[i] === 0) return Infinity;
    s += a.p[i] * (a.logp[i] - b.logp[i]);
    da[i] += scale * (a.logp[i] - b.logp[i] + (a.inside[i] ? 1 : 0));
    if (b.inside[i]) db[i] -= (scale * a.p[i]) / b.p[i];
  }
  return s;
}

function colsOf(t: TokenColumns, l: number, argument: string): number[] {
  const cols = typeof t === "number" ? [t] : [...t];
  check(
    cols.length > 0 && cols.every((c) => Number.isInteger(c) && c >= 0 && c < l),
    argument,
    () => `expected token columns in 0 … ${l - 1}, got ${JSON.stringify(t)}`,
  );
  return cols;
}

/**
 * SynGen's loss on one item's accumulated cross map and its gradient (see the module doc).
 * `maps.cross` is `[H·W, L]`; the value is in nats; the gradient is `[H·W, L]`. Throws an
 * AttnkitError naming the argument for token columns outside the map.
 *
 * @example
 * ```ts
 * import { synGenLoss } from "@attnkit/attnkit";
 * declare const maps: import("@attnkit/attnkit").AttentionMaps;
 * // "<sot> a red circle and a blue square <eot>": red→circle, blue→square.
 * const r = synGenLoss(maps, {
 *   subtrees: [{ noun: 3, modifiers: [2] }, { noun: 7, modifiers: [6] }],
 *   promptTokens: [1, 2, 3, 4, 5, 6, 7],
 * });
 * ```
 */
export function synGenLoss(maps: AttentionMaps, opts: SynGenOptions): SynGenResult {
  const [h, w, l] = checkCross(maps.cross, maps.size);
  const hw = h * w;
  const subtrees: readonly SynGenSubtree[] = opts.subtrees;
  check(Array.isArray(subtrees), "subtrees", "expected an array of subtrees");
  const prompt = opts.promptTokens.map((c, i) => colsOf(c, l, `promptTokens[${i}]`)[0]);
  const dists = new Map<number, Dist>();
  const dist = (c: number): Dist => {
    let d = dists.get(c);
    if (!d) {
      const col = new Float64Array(hw);
      for (let p = 0; p < hw; p++) col[p] = maps.cross.data[p * l + c];
      d = distOf(col, c);
      dists.set(c, d);
    }
    return d;
  };
  // d value / d P_t per column, then through the normalisation.
  const dP = new Map<number, Float64Array>();
  const gOf = (c: number) => {
    let g = dP.get(c);
    if (!g) dP.set(c, g = new Float64Array(hw));
    return g;
  };
  /** max over piece pairs of d(a, b), its gradient scaled by `scale` added; returns the value. */
  const maxPair = (as: number[], bs: number[], scale: number): number => {
    let best = -Infinity;
    let at: [number, number] = [as[0], bs[0]];
    for (const a of as) {
      for (const b of bs) {
        const v = symKlValue(dist(a), dist(b));
        if (v > best || Number.isNaN(v)) {
          best = v;
          at = [a, b];
        }
      }
    }
    if (scale !== 0 && Number.isFinite(best)) {
      const da = gOf(at[0]), db = gOf(at[1]);
      klInto(dist(at[0]), dist(at[1]), da, db, scale / 2);
      klInto(dist(at[1]), dist(at[0]), db, da, scale / 2);
    }
    return best;
  };
  /** −mean over outside tokens o of max_{t ∈ src} d(t, o), scaled. */
  const outside = (src: number[], out: number[], scale: number): number => {
    if (out.length === 0) return 0;
    let s = 0;
    for (const o of out) s += maxPair(src, [o], -scale / out.length);
    return -s / out.length;
  };

  let positive = 0, negative = 0;
  subtrees.forEach((tree: SynGenSubtree, ti: number) => {
    const noun = colsOf(tree.noun, l, `subtrees[${ti}].noun`);
    const mods = tree.modifiers.map((m, mi) => colsOf(m, l, `subtrees[${ti}].modifiers[${mi}]`));
    const inTree = new Set([...noun, ...mods.flat()]);
    const out = prompt.filter((c) => !inTree.has(c));
    if (mods.length === 0) {
      negative += outside(noun, out, 1);
      return;
    }
    for (const m of mods) {
      positive += maxPair(m, noun, 1);
      negative += (outside(m, out, 0.5) + outside(noun, out, 0.5)) / 2;
    }
  });
  const value = positive + negative;
  const g = new Float32Array(hw * l);
  for (const [c, dp] of dP) {
    const d = dist(c);
    let dot = 0;
    for (let p = 0; p < hw; p++) dot += dp[p] * d.p[p];
    for (let p = 0; p < hw; p++) g[p * l + c] = (dp[p] - dot) / d.sum;
  }
  return {
    value,
    positive,
    negative,
    terms: { positive, negative },
    grad: { cross: tensor([hw, l], g) },
  };
}

function symKlValue(a: Dist, b: Dist): number {
  const scratch = new Float64Array(a.p.length);
  return (klInto(a, b, scratch, scratch, 0) + klInto(b, a, scratch, scratch, 0)) / 2;
}
