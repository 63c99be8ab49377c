/**
 * Finds attention cores in an ONNX graph by structure, never by node names:
 *
 * - unfused: `MatMul(Q, Kᵀ) → [Mul|Div by a scale]* → [Add(mask)] → Softmax(last axis) →
 *   MatMul(·, V)`, including the torch-2 SDPA export (`Mul(√scale)` on Q and on Kᵀ before the
 *   MatMul) and scales computed at run time from `Shape` (dynamic-axis exports);
 * - Einsum: the same with `Einsum` for the scores and/or `P·V` (see `einsum.ts`);
 * - fused: `com.microsoft` MultiHeadAttention (separate, packed-QKV or packed-KV inputs, q/k/v
 *   bias, key-padding mask, attention bias), `com.microsoft` Attention (Q, K, V projected inside
 *   the op from stacked QKV weights, as onnxruntime's transformer optimizer emits; mask index,
 *   attention bias) and the ONNX opset-23 `Attention` op (additive or boolean mask).
 *
 * Q and K are described as they enter the score MatMul (or the fused op) together with their
 * layout, so `tapAttention` can present them as [B, heads, N, d]; for fused ops the core also
 * says what the op adds on the way (bias, projection, masks), so the taps can apply exactly that.
 * Attention-like nodes that cannot be tapped are returned as `skipped` with the reason, never
 * dropped.
 *
 * @module
 */
import { AttnkitError } from "../errors.ts";
import {
  constantNumbers,
  opsetVersion,
  partialConstant,
  producerMap,
  staticShape,
  topologicalOrder,
} from "../onnx/graph.ts";
import type { AttributeProto, GraphProto, Model, NodeProto } from "../onnx/types.ts";
import { DataType } from "../onnx/types.ts";
import { elemTypes } from "../onnx/elem_type.ts";
import { einsumAppliesProbs, einsumScores, parseEinsum } from "./einsum.ts";
import {
  type JointAttention,
  type JointOptions,
  markJointCores,
  throughElementwise,
} from "./joint.ts";

/**
 * How Q and K are laid out where they are read: `"bhnd"` = [B, heads, N, d]; `"(bh)nd"` =
 * [B·heads, N, d] (heads folded into the batch, the older diffusers export); `"bnc"` =
 * [B, N, heads·d] (the 3-D inputs of the fused ops); `"bsnh"` = [B, N, heads, d] (one slot of a
 * packed QKV/KV input, after the slot is taken).
 */
export type AttentionLayout = "bhnd" | "(bh)nd" | "bnc" | "bsnh";

/** The attention forms recognised. */
export type AttentionForm =
  | "matmul"
  | "einsum"
  | "MultiHeadAttention"
  | "Attention"
  | "com.microsoft.Attention";

/**
 * What a fused op does to its inputs before `Q·Kᵀ` (the tap rebuilds Q and K from these).
 * Source: onnxruntime contrib op docs (MultiHeadAttention, Attention).
 */
export interface FusedQk {
  /** q/k/v bias `[Cq + Ck + Cv]`, added to the projected Q and K (MHA input 3, Attention input 2). */
  bias?: string;
  /**
   * MHA packed inputs: `"qkv"` = query `[B, N, heads, 3, d]` (no key/value); `"kv"` = key
   * `[B, Nk, heads, 2, d]` (no value).
   */
  packed?: "qkv" | "kv";
  /**
   * com.microsoft Attention: Q = input·W[:, 0:Cq], K = input·W[:, Cq:Cq+Ck] with W `[C, Cq+Ck+Cv]`
   * (`qkv_hidden_sizes`, or equal thirds).
   */
  projection?: { weight: string; sizes: [number, number, number] };
}

/** Masks a fused op adds to the scaled scores, in the order it adds them. */
export interface AttentionMasks {
  /**
   * Integer key-padding mask / mask index: rank 2 `[B, Nk]` or 3 `[B, Nq, Nk]` (0 = masked), or
   * rank 1 `[B]` key lengths (keys at and after the length are masked). Masked scores get
   * `filter` added (the op's `mask_filter_value`, default -10000).
   */
  keyPadding?: { tensor: string; rank: 1 | 2 | 3; filter: number };
  /** Float masks added to the scores, broadcast to `[B, heads, Nq, Nk]`. */
  additive?: string[];
  /** Boolean mask broadcast to `[B, heads, Nq, Nk]`: false = the key is not attended. */
  boolean?: string;
}

/** A run-time scale factor: the core's scale is multiplied by `tensor ** power`. */
export interface ScaleFactor {
  /** Tensor holding the (scalar) factor. */
  tensor: string;
  /** +1 for a Mul, -1 for a Div. */
  power: 1 | -1;
}

/** One attention core found in a graph. */
export interface AttentionCore {
  /** Position among the cores, in graph order. */
  index: number;
  /** Which pattern matched. */
  form: AttentionForm;
  /** "cross" when K depends on the conditioning input and not on the latent input. */
  kind: "self" | "cross";
  /** Q as it enters the score MatMul (after any scale Mul) or the fused op. */
  q: string;
  /** K (or Kᵀ when `kTransposed`) as it enters the score MatMul, or the fused op's key. */
  k: string;
  /** True when `k` is Kᵀ (no separate K tensor exists upstream of the transpose). */
  kTransposed: boolean;
  /** V as read by the output MatMul or the fused op. */
  v: string;
  /** Layout of `q` (and of `k` before transposition). */
  layout: AttentionLayout;
  /** Layout of `k` for fused ops whose key may be 4-D while the query is 3-D. */
  kLayout: AttentionLayout;
  /** Number of query heads, when known statically. */
  heads: number | undefined;
  /** Number of key/value heads when it differs from `heads` (grouped-query attention). */
  kvHeads?: number;
  /**
   * Constant part of the scale on QKᵀ; `undefined` for a fused op without a `scale` attribute,
   * whose scale is 1/√d.
   */
  scale: number | undefined;
  /** Run-time scale factors (dynamic exports compute 1/√d from `Shape`). */
  scaleFactors: ScaleFactor[];
  /** Unfused: the Softmax node. */
  softmax?: NodeProto;
  /** Unfused: the score MatMul node. */
  scoreMatMul?: NodeProto;
  /** Unfused: the mask Add before the Softmax, if any. */
  maskAdd?: NodeProto;
  /** Fused: the attention node. */
  fused?: NodeProto;
  /** Fused: bias, packing or projection the op applies to Q and K. */
  fusedQk?: FusedQk;
  /** Fused: masks the op adds to the scores. */
  masks?: AttentionMasks;
  /** Einsum: transpose of `q` to `[batch…, Nq, d]` before the layout applies. */
  qPerm?: number[];
  /** Einsum: transpose of `k` to `[batch…, Nk, d]` before the layout applies. */
  kPerm?: number[];
  /** Output of the core: the Softmax output (unfused) or the fused op's first output. */
  probsOrOutput: string;
  /** Set when the core is MMDiT joint attention (text and image tokens in one softmax). */
  joint?: JointAttention;
}

/** An attention-like node that was seen but cannot be hooked, and why. */
export interface SkippedAttention {
  /** The node. */
  node: NodeProto;
  /** Why it is not a core. */
  reason: string;
}

/** Options for {@link findAttention}. */
export interface FindAttentionOptions {
  /**
   * Graph inputs carrying text conditioning. Default: inputs whose name matches
   * /encoder_hidden_states|context|text|cond|prompt|txt|clip/i.
   */
  conditioning?: string[];
  /** Head count to use where it cannot be read from the graph. */
  heads?: number;
  /** Joint-attention detection: latent inputs and the config fallback (see `joint.ts`). */
  joint?: JointOptions;
}

const CONDITIONING = /encoder_hidden_states|context|text|cond|prompt|txt|clip/i;

function attr(n: NodeProto, name: string): AttributeProto | undefined {
  return n.attribute.find((a) => a.name === name);
}

function intAttr(n: NodeProto, name: string): number | undefined {
  const a = attr(n, name);
  return a?.i === undefined ? undefined : Number(a.i);
}

function intsAttr(n: NodeProto, name: string): number[] | undefined {
  return attr(n, name)?.ints?.map(Number);
}

function einsumEquation(ctx: Ctx, n: NodeProto) {
  const a = attr(n, "equation");
  const text = a?.s ? new TextDecoder().decode(a.s) : "";
  return parseEinsum(text, n.input.map((i) => staticShape(ctx.g, i)?.length));
}

/** True for a default-domain node of type `op`. */
function isOp(n: NodeProto | undefined, op: string): boolean {
  return n !== undefined && n.opType === op && (n.domain ?? "") === "";
}

/** Everything the matchers share about one graph. */
interface Ctx {
  g: GraphProto;
  producers: Map<string, NodeProto>;
  consumers: Map<string, NodeProto[]>;
  opset: number;
  shapeDerived: Map<string, boolean>;
  elemType: (t: string) => number | undefined;
}

function consumersOf(g: GraphProto): Map<string, NodeProto[]> {
  const m = new Map<string, NodeProto[]>();
  for (const n of g.node) {
    for (const i of n.input) {
      if (i === "") continue;
      const l = m.get(i);
      if (l) l.push(n);
      else m.set(i, [n]);
    }
  }
  return m;
}

/** True when a tensor is constant or computed only from constants and tensor shapes. */
function isShapeDerived(ctx: Ctx, t: string, depth = 0): boolean {
  const memo = ctx.shapeDerived.get(t);
  if (memo !== undefined) return memo;
  let ok: boolean;
  if (constantNumbers(ctx.g, t) !== undefined) ok = true;
  else {
    const p = ctx.producers.get(t);
    if (!p || depth > 64) ok = false;
    else if (p.opType === "Shape" || p.opType === "Size") ok = true;
    else if (p.opType === "Constant") ok = true;
    else ok = p.input.every((i) => i === "" || isShapeDerived(ctx, i, depth + 1));
  }
  ctx.shapeDerived.set(t, ok);
  return ok;
}

/** Splits a Mul/Div by a scalar factor: returns the data side and the factor, if one fits. */
function scaleStep(
  ctx: Ctx,
  t: string,
): { next: string; constant: number; factor?: ScaleFactor } | undefined {
  const p = ctx.producers.get(t);
  if (!p || (p.domain ?? "") !== "" || (p.opType !== "Mul" && p.opType !== "Div")) return undefined;
  const [a, b] = p.input;
  const sides = p.opType === "Mul" ? [[a, b], [b, a]] : [[a, b]];
  for (const [data, fac] of sides) {
    const c = constantNumbers(ctx.g, fac);
    if (c !== undefined) {
      if (c.length !== 1) continue;
      return { next: data, constant: p.opType === "Mul" ? c[0] : 1 / c[0] };
    }
    if (isShapeDerived(ctx, fac) && !isShapeDerived(ctx, data)) {
      return {
        next: data,
        constant: 1,
        factor: { tensor: fac, power: p.opType === "Mul" ? 1 : -1 },
      };
    }
  }
  return undefined;
}

/** Follows Mul/Div scales and Casts back from `t`; accumulates the scale. */
function stripScales(
  ctx: Ctx,
  t: string,
  acc: { scale: number; factors: ScaleFactor[] },
): string {
  for (let guard = 0; guard < 16; guard++) {
    const p = ctx.producers.get(t);
    if (p && p.opType === "Cast") {
      t = p.input[0];
      continue;
    }
    const s = scaleStep(ctx, t);
    if (!s) return t;
    acc.scale *= s.constant;
    if (s.factor) acc.factors.push(s.factor);
    t = s.next;
  }
  return t;
}

interface LayoutGuess {
  layout: AttentionLayout;
  heads: number | undefined;
  rank: number;
}

/** True when the scores path from `t` (scales, reshapes, Adds) reaches a MatMul. */
function reachesMatMul(ctx: Ctx, t: string): boolean {
  for (let guard = 0; guard < 12; guard++) {
    t = stripScales(ctx, t, { scale: 1, factors: [] });
    const p = ctx.producers.get(t);
    if (!p) return false;
    if (p.opType === "MatMul" || p.opType === "Einsum") return true;
    if (p.opType !== "Reshape" && p.opType !== "Add") return false;
    t = p.input[0];
  }
  return false;
}

/** True when `t` is a linear projection x·W (+ bias, scale, cast) with no reshape on the way. */
function projectedDirectly(ctx: Ctx, t: string): boolean {
  for (let guard = 0; guard < 8; guard++) {
    const p = ctx.producers.get(t);
    if (!p || (p.domain ?? "") !== "") return false;
    if (p.opType === "MatMul" || p.opType === "Gemm") {
      return isShapeDerived(ctx, p.input[1]) && !isShapeDerived(ctx, p.input[0]);
    }
    if (!["Add", "Mul", "Div", "Cast", "Identity"].includes(p.opType)) return false;
    const data = p.input.filter((i) => !isShapeDerived(ctx, i));
    if (data.length !== 1) return false;
    t = data[0];
  }
  return false;
}

/** Works out the layout (and head count) of a Q or K tensor from the reshapes that made it. */
function traceLayout(ctx: Ctx, t: string): LayoutGuess | undefined {
  const p = ctx.producers.get(t);
  const fourDReshape = (src: string, perm: number[]): number | undefined => {
    const r = ctx.producers.get(src);
    if (!r || r.opType !== "Reshape") return undefined;
    const target = partialConstant(ctx.g, r.input[1]);
    if (!target || target.length !== 4) return undefined;
    const h = target[perm[1]];
    return h !== undefined && h > 0 ? h : undefined;
  };
  if (p?.opType === "Reshape") {
    const target = partialConstant(ctx.g, p.input[1]);
    if (target?.length === 3) {
      const tr = ctx.producers.get(p.input[0]);
      const perm = tr?.opType === "Transpose" ? intsAttr(tr, "perm") : undefined;
      const heads = perm?.length === 4 ? fourDReshape(tr!.input[0], perm) : undefined;
      return { layout: "(bh)nd", heads, rank: 3 };
    }
    if (target?.length === 4) {
      const h = target[1];
      return { layout: "bhnd", heads: h !== undefined && h > 0 ? h : undefined, rank: 4 };
    }
  }
  if (p?.opType === "Transpose") {
    const perm = intsAttr(p, "perm");
    if (perm?.length === 4) {
      return { layout: "bhnd", heads: fourDReshape(p.input[0], perm), rank: 4 };
    }
    if (perm?.length === 3) return { layout: "(bh)nd", heads: undefined, rank: 3 };
  }
  const dims = staticShape(ctx.g, t);
  if (dims?.length === 4) return { layout: "bhnd", heads: dims[1].dimValue, rank: 4 };
  if (dims?.length === 3) return { layout: "(bh)nd", heads: undefined, rank: 3 };
  return undefined;
}

/** Tries to match an unfused core whose Softmax is `sm`. */
function matchUnfused(ctx: Ctx, sm: NodeProto, opts: FindAttentionOptions):
  | Omit<AttentionCore, "index" | "kind">
  | string {
  // Softmax output must feed MatMul(·, V) or an Einsum applying it to V (possibly through a Cast).
  const probs = sm.output[0];
  let users = ctx.consumers.get(probs) ?? [];
  let pIn = probs;
  if (users.length === 1 && users[0].opType === "Cast") {
    pIn = users[0].output[0];
    users = ctx.consumers.get(pIn) ?? [];
  }
  let v: string | undefined;
  for (const u of users) {
    if (isOp(u, "MatMul") && u.input[0] === pIn) v = u.input[1];
    else if (isOp(u, "Einsum") && u.input.length === 2) {
      const eq = einsumEquation(ctx, u);
      const at = u.input.indexOf(pIn);
      if (typeof eq !== "string" && einsumAppliesProbs(eq, at)) v = u.input[1 - at];
    }
    if (v !== undefined) break;
  }
  if (v === undefined) {
    if (users.some((u) => isOp(u, "MatMul") || isOp(u, "Einsum"))) {
      return "Softmax output is not applied to V as P·V (MatMul left operand or Einsum over keys)";
    }
    return "Softmax output does not feed a MatMul with V";
  }

  // Walk back from the Softmax input through scales, reshapes (a bias added on a 4-D view of
  // [B·heads, N, N] scores) and mask Adds to the score MatMul.
  const acc = { scale: 1, factors: [] as ScaleFactor[] };
  let t = sm.input[0];
  let maskAdd: NodeProto | undefined;
  let p: NodeProto | undefined;
  for (let guard = 0; guard < 12; guard++) {
    t = stripScales(ctx, t, acc);
    p = ctx.producers.get(t);
    if (!p || (p.domain ?? "") !== "") break;
    if (p.opType === "Reshape") t = p.input[0];
    else if (p.opType === "Add") {
      maskAdd ??= p;
      t = reachesMatMul(ctx, p.input[0]) ? p.input[0] : p.input[1];
    } else break;
  }
  const axis = intAttr(sm, "axis") ?? (ctx.opset >= 13 ? -1 : 1);
  if (p && isOp(p, "Einsum")) return matchEinsumScores(ctx, sm, p, acc, maskAdd, v, axis, opts);
  if (!p || p.opType !== "MatMul" || (p.domain ?? "") !== "") {
    return `no MatMul(Q, Kᵀ) or Einsum before the Softmax (found ${
      p ? p.opType : "a graph input"
    })`;
  }
  const score = p;
  const q = stripScales(ctx, score.input[0], acc);
  let k = stripScales(ctx, score.input[1], acc);
  if (constantNumbers(ctx.g, q) !== undefined || constantNumbers(ctx.g, k) !== undefined) {
    return "score MatMul has a constant operand";
  }
  // Joint attention: Q is a Concat of text and image parts, or passed through qk-norm and rotary.
  const layoutOf = (t: string) =>
    traceLayout(ctx, t) ??
      throughElementwise(
        ctx.producers,
        (c) => isShapeDerived(ctx, c),
        t,
        (x) => traceLayout(ctx, x),
      );
  let qLayout = layoutOf(q);
  if (!qLayout) {
    // No reshape or recorded shape says Q's rank: a Transpose making Kᵀ does.
    const kp = ctx.producers.get(k);
    const perm = kp?.opType === "Transpose" ? intsAttr(kp, "perm") : undefined;
    if (perm?.length === 3) qLayout = { layout: "(bh)nd", heads: undefined, rank: 3 };
    else if (perm?.length === 4) qLayout = { layout: "bhnd", heads: undefined, rank: 4 };
  }
  if (!qLayout) return `cannot tell the layout of Q ("${q}")`;
  const rank = qLayout.rank;

  // Kᵀ: a Transpose swapping the last two axes means K exists upstream.
  let kTransposed = true;
  const kp = ctx.producers.get(k);
  const swap = rank === 4 ? [0, 1, 3, 2] : [0, 2, 1];
  const kperm = kp?.opType === "Transpose" ? intsAttr(kp, "perm") : undefined;
  if (kperm && kperm.length === rank && kperm.every((x, i) => x === swap[i])) {
    k = kp!.input[0];
    kTransposed = false;
  }
  const kLayout = kTransposed ? undefined : layoutOf(k);

  if (axis !== -1 && axis !== rank - 1) return `Softmax axis ${axis} is not the last axis`;

  // Scores over a whole projection x·W (no head split anywhere) are single-head attention.
  const single = qLayout.rank === 3 && projectedDirectly(ctx, q) ? 1 : undefined;
  const heads = qLayout.heads ?? kLayout?.heads ?? opts.heads ?? single;
  return {
    form: "matmul",
    q,
    k,
    kTransposed,
    v,
    layout: qLayout.layout,
    kLayout: qLayout.layout,
    heads,
    scale: acc.scale,
    scaleFactors: acc.factors,
    softmax: sm,
    scoreMatMul: score,
    maskAdd,
    probsOrOutput: probs,
  };
}

/** The Einsum branch of {@link matchUnfused}: scores computed by `Einsum(Q, K)`. */
function matchEinsumScores(
  ctx: Ctx,
  sm: NodeProto,
  score: NodeProto,
  acc: { scale: number; factors: ScaleFactor[] },
  maskAdd: NodeProto | undefined,
  v: string,
  axis: number,
  opts: FindAttentionOptions,
): Omit<AttentionCore, "index" | "kind"> | string {
  const eq = einsumEquation(ctx, score);
  if (typeof eq === "string") return `Einsum scores: ${eq}`;
  const s = einsumScores(eq);
  if (typeof s === "string") return s;
  if (axis !== -1 && axis !== s.rank - 1) return `Softmax axis ${axis} is not the last axis`;
  const q = stripScales(ctx, score.input[s.qOperand], acc);
  const k = stripScales(ctx, score.input[1 - s.qOperand], acc);
  if (constantNumbers(ctx.g, q) !== undefined || constantNumbers(ctx.g, k) !== undefined) {
    return "score Einsum has a constant operand";
  }
  const identity = (p: number[]) => p.every((x, i) => x === i);
  let heads: number | undefined;
  if (identity(s.qPerm)) heads = traceLayout(ctx, q)?.heads;
  else if (s.rank === 4) heads = staticShape(ctx.g, q)?.[s.qPerm[1]]?.dimValue;
  if (heads === undefined && identity(s.kPerm)) heads = traceLayout(ctx, k)?.heads;
  heads ??= opts.heads;
  const layout: AttentionLayout = s.rank === 4 ? "bhnd" : "(bh)nd";
  const core: Omit<AttentionCore, "index" | "kind"> = {
    form: "einsum",
    q,
    k,
    kTransposed: false,
    v,
    layout,
    kLayout: layout,
    heads,
    scale: acc.scale,
    scaleFactors: acc.factors,
    softmax: sm,
    scoreMatMul: score,
    maskAdd,
    probsOrOutput: sm.output[0],
  };
  if (!identity(s.qPerm)) core.qPerm = s.qPerm;
  if (!identity(s.kPerm)) core.kPerm = s.kPerm;
  return core;
}

function fusedScale(n: NodeProto): number | undefined {
  const a = attr(n, "scale");
  return a?.f !== undefined && a.f !== 0 ? a.f : undefined;
}

function floatAttr(n: NodeProto, name: string): number | undefined {
  const a = attr(n, name);
  return a?.f === undefined ? undefined : a.f;
}

/** Reads an integer key-padding mask / mask index input of a com.microsoft op. */
function keyPaddingMask(
  ctx: Ctx,
  n: NodeProto,
  t: string,
): AttentionMasks["keyPadding"] | string {
  const rank = staticShape(ctx.g, t)?.length;
  if (rank !== 1 && rank !== 2 && rank !== 3) {
    return rank === undefined
      ? `mask input "${t}" has no recorded shape (rank 1, 2 or 3 is needed to apply it)`
      : `mask input "${t}" of rank ${rank} (only [B], [B, Nk] and [B, Nq, Nk] are applied)`;
  }
  return { tensor: t, rank, filter: floatAttr(n, "mask_filter_value") ?? -10000 };
}

function matchMha(ctx: Ctx, n: NodeProto): Omit<AttentionCore, "index" | "kind"> | string {
  const [q, k = "", v = "", bias = "", kpm = "", attnBias = "", pastK = "", pastV = ""] = n.input;
  const heads = intAttr(n, "num_heads");
  if (intAttr(n, "unidirectional")) return "unidirectional (causal) MultiHeadAttention";
  if (pastK !== "" || pastV !== "") return "MultiHeadAttention with past key/value (a KV cache)";
  const qRank = staticShape(ctx.g, q)?.length;
  const kRank = staticShape(ctx.g, k)?.length;
  const fusedQk: FusedQk = {};
  if (bias !== "") fusedQk.bias = bias;
  let layout: AttentionLayout = "bnc", kLayout: AttentionLayout = "bnc";
  if (k === "" && v === "") {
    if (qRank !== undefined && qRank !== 5) return `packed QKV query of rank ${qRank} (5 expected)`;
    fusedQk.packed = "qkv";
    layout = kLayout = "bsnh";
  } else if (v === "") {
    if (kRank !== undefined && kRank !== 5) return `packed KV key of rank ${kRank} (5 expected)`;
    fusedQk.packed = "kv";
    kLayout = "bsnh";
  } else if (k === "") return "MultiHeadAttention with a value but no key";
  else if (kRank === 4) kLayout = "bhnd";
  else if (kRank === 5) return "key of rank 5 with a separate value";
  if (qRank !== undefined && qRank !== 3 && fusedQk.packed !== "qkv") {
    return `query of rank ${qRank} (3 expected)`;
  }
  if (heads === undefined) return "MultiHeadAttention without num_heads";
  const masks: AttentionMasks = {};
  if (kpm !== "") {
    const m = keyPaddingMask(ctx, n, kpm);
    if (typeof m === "string") return m;
    masks.keyPadding = m;
  }
  if (attnBias !== "") masks.additive = [attnBias];
  const kIn = fusedQk.packed === "qkv" ? q : k;
  return {
    form: "MultiHeadAttention",
    q,
    k: kIn,
    kTransposed: false,
    v: fusedQk.packed === "qkv" ? q : fusedQk.packed === "kv" ? k : v,
    layout,
    kLayout,
    heads,
    scale: fusedScale(n),
    scaleFactors: [],
    fused: n,
    fusedQk,
    masks,
    probsOrOutput: n.output[0],
  };
}

/** com.microsoft Attention: self-attention with Q, K, V projected inside the op. */
function matchMsAttention(ctx: Ctx, n: NodeProto): Omit<AttentionCore, "index" | "kind"> | string {
  const [x, w = "", bias = "", maskIndex = "", past = "", attnBias = "", pastLen = ""] = n.input;
  const heads = intAttr(n, "num_heads");
  if (heads === undefined) return "com.microsoft Attention without num_heads";
  if (intAttr(n, "unidirectional")) return "unidirectional (causal) com.microsoft Attention";
  if (intAttr(n, "do_rotary")) return "com.microsoft Attention with rotary embedding inside the op";
  if (past !== "" || pastLen !== "") return "com.microsoft Attention with past state (a KV cache)";
  const wDims = staticShape(ctx.g, w)?.map((d) => d.dimValue);
  const given = intsAttr(n, "qkv_hidden_sizes");
  let sizes: [number, number, number] | undefined;
  if (given?.length === 3) sizes = [given[0], given[1], given[2]];
  else if (wDims?.length === 2 && wDims[1] !== undefined && wDims[1] % 3 === 0) {
    const c = wDims[1] / 3;
    sizes = [c, c, c];
  }
  if (!sizes) {
    return `weights "${w}" of unknown width and no qkv_hidden_sizes: cannot split Q and K`;
  }
  const xRank = staticShape(ctx.g, x)?.length;
  if (xRank !== undefined && xRank !== 3) return `input of rank ${xRank} (3 expected)`;
  const masks: AttentionMasks = {};
  if (maskIndex !== "") {
    const m = keyPaddingMask(ctx, n, maskIndex);
    if (typeof m === "string") return m;
    masks.keyPadding = m;
  }
  if (attnBias !== "") masks.additive = [attnBias];
  const fusedQk: FusedQk = { projection: { weight: w, sizes } };
  if (bias !== "") fusedQk.bias = bias;
  return {
    form: "com.microsoft.Attention",
    q: x,
    k: x,
    kTransposed: false,
    v: x,
    layout: "bnc",
    kLayout: "bnc",
    heads,
    scale: fusedScale(n),
    scaleFactors: [],
    fused: n,
    fusedQk,
    masks,
    probsOrOutput: n.output[0],
  };
}

function matchAttention23(ctx: Ctx, n: NodeProto): Omit<AttentionCore, "index" | "kind"> | string {
  const [q, k = "", v = "", mask = "", pastK = "", pastV = "", nonpad = ""] = n.input;
  if (k === "" || v === "") return "Attention without key or value";
  const qHeads = intAttr(n, "q_num_heads");
  const kvHeads = intAttr(n, "kv_num_heads");
  if (intAttr(n, "is_causal")) return "causal Attention";
  if (attr(n, "softcap")?.f) return "Attention with softcap";
  if (pastK !== "" || pastV !== "") return "Attention with past key/value (a KV cache)";
  if (nonpad !== "") return "Attention with nonpad_kv_seqlen";
  const qRank = staticShape(ctx.g, q)?.length ?? (qHeads !== undefined ? 3 : 4);
  const layout: AttentionLayout = qRank === 3 ? "bnc" : "bhnd";
  const heads = qHeads ?? staticShape(ctx.g, q)?.[1]?.dimValue;
  const masks: AttentionMasks = {};
  if (mask !== "") {
    if (ctx.elemType(mask) === DataType.BOOL) masks.boolean = mask;
    else masks.additive = [mask];
  }
  const core: Omit<AttentionCore, "index" | "kind"> = {
    form: "Attention",
    q,
    k,
    kTransposed: false,
    v,
    layout,
    kLayout: layout,
    heads,
    scale: fusedScale(n),
    scaleFactors: [],
    fused: n,
    masks,
    probsOrOutput: n.output[0],
  };
  if (kvHeads !== undefined && kvHeads !== heads) core.kvHeads = kvHeads;
  return core;
}

/** com.microsoft attention ops whose Q and K cannot be rebuilt outside the op, and why. */
const UNTAPPABLE_MS = new Map([
  ["PackedAttention", "token-packed (padding-free) batches have no [B, N] layout to tap"],
  ["PackedMultiHeadAttention", "token-packed (padding-free) batches have no [B, N] layout to tap"],
  ["GroupQueryAttention", "rotary embedding and KV cache are applied inside the op"],
  ["DecoderMaskedMultiHeadAttention", "decoder KV-cache attention, one query token at a time"],
  ["SparseAttention", "block-sparse attention layout"],
]);

/** True when the Softmax input comes (through scales, reshapes, Adds) from X·Y of two computed tensors. */
function scoresOfTwoTensors(ctx: Ctx, sm: NodeProto): boolean {
  let t = sm.input[0];
  for (let guard = 0; guard < 12; guard++) {
    t = stripScales(ctx, t, { scale: 1, factors: [] });
    const p = ctx.producers.get(t);
    if (!p) return false;
    if (isOp(p, "MatMul") || isOp(p, "Einsum")) {
      // Weights (even cast or reshaped at run time) make it a classifier, not attention.
      return p.input.length === 2 && p.input.every((i) => !isShapeDerived(ctx, i));
    }
    if (p.opType !== "Reshape" && p.opType !== "Add") return false;
    t = p.input[0];
  }
  return false;
}

/** Graph inputs each tensor depends on (initializers excluded). */
function inputDependencies(g: GraphProto, order: NodeProto[]): Map<string, Set<string>> {
  const deps = new Map<string, Set<string>>();
  const inits = new Set(g.initializer.map((t) => t.name));
  for (const v of g.input) if (!inits.has(v.name)) deps.set(v.name, new Set([v.name]));
  const empty = new Set<string>();
  for (const n of order) {
    let acc: Set<string> | undefined;
    // Shapes are not data: a cross-attention K reshaped with the latent batch size stays cross.
    const shapeOnly = n.opType === "Shape" || n.opType === "Size";
    for (const i of shapeOnly ? [] : n.input) {
      const d = deps.get(i);
      if (!d || d.size === 0) continue;
      if (!acc) acc = d;
      else if (acc !== d) {
        const merged = new Set(acc);
        for (const x of d) merged.add(x);
        acc = merged;
      }
    }
    for (const o of n.output) deps.set(o, acc ?? empty);
  }
  return deps;
}

/**
 * Every attention core of a model in graph order, plus every attention-like node that could not
 * be used, with the reason (causal or KV-cache fused ops, GroupQueryAttention, token-packed
 * attention, Einsum equations that are not Q·Kᵀ, a Softmax over Q·Kᵀ not applied to V, …).
 * Nothing attention-like is dropped silently: a Softmax is ignored only when its scores come
 * from a product with a weight (a classifier head).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { scanAttention } from "@attnkit/attnkit";
 * import { model, node, valueInfo } from "../onnx/build.ts";
 * // A Softmax whose output never meets V (a classifier head) is reported, not tapped.
 * const m = model({
 *   inputs: [valueInfo("x", [1, 4]), valueInfo("w", [4, 3])],
 *   outputs: [valueInfo("p", [1, 3])],
 *   nodes: [node("MatMul", ["x", "w"], ["s"]), node("Softmax", ["s"], ["p"], { axis: -1 })],
 * });
 * const { cores, skipped } = scanAttention(m);
 * for (const s of skipped) console.log(s.node.opType, s.reason);
 * assert(cores.length === 0 && skipped[0].node.opType === "Softmax");
 * ```
 */
export function scanAttention(
  model: Model,
  opts: FindAttentionOptions = {},
): { cores: AttentionCore[]; skipped: SkippedAttention[] } {
  const g = model.graph;
  const order = topologicalOrder(g);
  const ctx: Ctx = {
    g,
    producers: producerMap(g),
    consumers: consumersOf(g),
    opset: opsetVersion(model) ?? 17,
    shapeDerived: new Map(),
    elemType: elemTypes(g),
  };
  const found: Omit<AttentionCore, "index" | "kind">[] = [];
  const skipped: SkippedAttention[] = [];
  for (const n of order) {
    const domain = n.domain ?? "";
    let r: Omit<AttentionCore, "index" | "kind"> | string | undefined;
    if (domain === "" && n.opType === "Softmax") {
      r = matchUnfused(ctx, n, opts);
      // A Softmax that is not attention (e.g. a classifier head over a weight matrix) is not
      // worth reporting; one over the product of two computed tensors is.
      if (
        typeof r === "string" && r.startsWith("Softmax output does not") &&
        !scoresOfTwoTensors(ctx, n)
      ) r = undefined;
    } else if (domain === "com.microsoft" && n.opType === "MultiHeadAttention") {
      r = matchMha(ctx, n);
    } else if (domain === "com.microsoft" && n.opType === "Attention") {
      r = matchMsAttention(ctx, n);
    } else if (domain === "" && n.opType === "Attention") {
      r = matchAttention23(ctx, n);
    } else if (domain === "com.microsoft" && UNTAPPABLE_MS.has(n.opType)) {
      r = `com.microsoft ${n.opType}: ${UNTAPPABLE_MS.get(n.opType)}`;
    }
    if (r === undefined) continue;
    if (typeof r === "string") skipped.push({ node: n, reason: r });
    else found.push(r);
  }

  const deps = inputDependencies(g, order);
  const inits = new Set(g.initializer.map((t) => t.name));
  const dataInputs = g.input.map((v) => v.name).filter((x) => !inits.has(x));
  const conditioning = new Set(opts.conditioning ?? dataInputs.filter((x) => CONDITIONING.test(x)));
  for (const c of opts.conditioning ?? []) {
    if (!dataInputs.includes(c)) {
      throw new AttnkitError(
        "conditioning",
        `"${c}" is not a graph input (${dataInputs.join(", ")})`,
      );
    }
  }
  const cores = found.map((c, index): AttentionCore => {
    const qDeps = deps.get(c.q) ?? new Set<string>();
    const kDeps = deps.get(c.k) ?? new Set<string>();
    const latent = [...qDeps].filter((x) => !conditioning.has(x));
    const usesText = [...kDeps].some((x) => conditioning.has(x));
    const usesLatent = latent.some((x) => kDeps.has(x));
    return { ...c, index, kind: usesText && !usesLatent ? "cross" : "self" };
  });
  return { cores: markJointCores(model, cores, conditioning, opts.joint), skipped };
}

/**
 * Every attention core of a model, in graph order (see {@link scanAttention}, which also says
 * what was skipped and why; `requireAttention` turns that into a load-time error).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { findAttention } from "@attnkit/attnkit";
 * import { model, node, valueInfo } from "../onnx/build.ts";
 * // One opset-23 Attention over q, k, v of shape [B=1, heads=2, N=4, d=8].
 * const m = model({
 *   opset: 23,
 *   inputs: ["q", "k", "v"].map((name) => valueInfo(name, [1, 2, 4, 8])),
 *   outputs: [valueInfo("y", [1, 2, 4, 8])],
 *   nodes: [node("Attention", ["q", "k", "v"], ["y"])],
 * });
 * // A UNet names its text input: { conditioning: ["encoder_hidden_states"] } marks cross cores.
 * const cores = findAttention(m);
 * assert(cores.length === 1 && cores[0].kind === "self" && cores[0].heads === 2);
 * ```
 */
export function findAttention(model: Model, opts: FindAttentionOptions = {}): AttentionCore[] {
  return scanAttention(model, opts).cores;
}
