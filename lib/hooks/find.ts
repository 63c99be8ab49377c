/**
 * Finds attention cores in an ONNX graph by structure, never by node names:
 *
 * - unfused: `MatMul(Q, Kᵀ) → [Mul|Div by a scale]* → [Add(mask)] → Softmax(last axis) →
 *   MatMul(·, V)`, including the torch-2 SDPA export (`Mul(√scale)` on Q and on Kᵀ before the
 *   MatMul) and scales computed at run time from `Shape` (dynamic-axis exports);
 * - fused: `com.microsoft` MultiHeadAttention and the ONNX opset-23 `Attention` op.
 *
 * Q and K are described as they enter the score MatMul (or the fused op) together with their
 * layout, so `tapAttention` can present them as [B, heads, N, d].
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
import {
  type JointAttention,
  type JointOptions,
  markJointCores,
  throughElementwise,
} from "./joint.ts";

/**
 * How Q and K are laid out where they are read: `"bhnd"` = [B, heads, N, d]; `"(bh)nd"` =
 * [B·heads, N, d] (heads folded into the batch, the older diffusers export); `"bnc"` =
 * [B, N, heads·d] (the 3-D inputs of the fused ops).
 */
export type AttentionLayout = "bhnd" | "(bh)nd" | "bnc";

/** The attention forms recognised. */
export type AttentionForm = "matmul" | "MultiHeadAttention" | "Attention";

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

/** Everything the matchers share about one graph. */
interface Ctx {
  g: GraphProto;
  producers: Map<string, NodeProto>;
  consumers: Map<string, NodeProto[]>;
  opset: number;
  shapeDerived: Map<string, boolean>;
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
    if (p.opType === "MatMul") return true;
    if (p.opType !== "Reshape" && p.opType !== "Add") return false;
    t = p.input[0];
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
  // Softmax output must feed MatMul(·, V) (possibly through a Cast).
  const probs = sm.output[0];
  let users = ctx.consumers.get(probs) ?? [];
  if (users.length === 1 && users[0].opType === "Cast") {
    users = ctx.consumers.get(users[0].output[0]) ?? [];
  }
  const pv = users.find((u) => u.opType === "MatMul" && (u.domain ?? "") === "");
  if (!pv) return "Softmax output does not feed a MatMul with V";
  const pvLeft = ctx.producers.get(pv.input[0]);
  if (pv.input[0] !== probs && !(pvLeft?.opType === "Cast" && pvLeft.input[0] === probs)) {
    return "Softmax output is the right operand of the MatMul";
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
  if (!p || p.opType !== "MatMul" || (p.domain ?? "") !== "") {
    return "no MatMul(Q, Kᵀ) before the Softmax";
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
  const qLayout = layoutOf(q);
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

  const axis = intAttr(sm, "axis") ?? (ctx.opset >= 13 ? -1 : 1);
  if (axis !== -1 && axis !== rank - 1) return `Softmax axis ${axis} is not the last axis`;

  const heads = qLayout.heads ?? kLayout?.heads ?? opts.heads;
  return {
    form: "matmul",
    q,
    k,
    kTransposed,
    v: pv.input[1],
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

function fusedScale(n: NodeProto): number | undefined {
  const a = attr(n, "scale");
  return a?.f !== undefined && a.f !== 0 ? a.f : undefined;
}

function matchMha(ctx: Ctx, n: NodeProto): Omit<AttentionCore, "index" | "kind"> | string {
  const [q, k = "", v = ""] = n.input;
  const heads = intAttr(n, "num_heads");
  if (k === "" || v === "") return "packed QKV input (no separate key/value) is not supported";
  const qRank = staticShape(ctx.g, q)?.length;
  if (qRank !== undefined && qRank !== 3) {
    return `query of rank ${qRank}: packed layouts unsupported`;
  }
  const kRank = staticShape(ctx.g, k)?.length;
  if (kRank === 5) return "packed KV input is not supported";
  if (intAttr(n, "unidirectional")) return "unidirectional (causal) MultiHeadAttention";
  return {
    form: "MultiHeadAttention",
    q,
    k,
    kTransposed: false,
    v,
    layout: "bnc",
    kLayout: kRank === 4 ? "bhnd" : "bnc",
    heads,
    scale: fusedScale(n),
    scaleFactors: [],
    fused: n,
    probsOrOutput: n.output[0],
  };
}

function matchAttention23(ctx: Ctx, n: NodeProto): Omit<AttentionCore, "index" | "kind"> | string {
  const [q, k = "", v = ""] = n.input;
  if (k === "" || v === "") return "Attention without key or value";
  const qHeads = intAttr(n, "q_num_heads");
  const kvHeads = intAttr(n, "kv_num_heads");
  if (intAttr(n, "is_causal")) return "causal Attention";
  if (attr(n, "softcap")?.f) return "Attention with softcap";
  const qRank = staticShape(ctx.g, q)?.length ?? (qHeads !== undefined ? 3 : 4);
  const layout: AttentionLayout = qRank === 3 ? "bnc" : "bhnd";
  const heads = qHeads ?? staticShape(ctx.g, q)?.[1]?.dimValue;
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
    probsOrOutput: n.output[0],
  };
  if (kvHeads !== undefined && kvHeads !== heads) core.kvHeads = kvHeads;
  return core;
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
 * Every attention core of a model in graph order, plus attention-like nodes that could not be
 * used (packed or causal fused ops, com.microsoft Attention with stacked QKV weights, …).
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
  };
  const found: Omit<AttentionCore, "index" | "kind">[] = [];
  const skipped: SkippedAttention[] = [];
  for (const n of order) {
    const domain = n.domain ?? "";
    let r: Omit<AttentionCore, "index" | "kind"> | string | undefined;
    if (domain === "" && n.opType === "Softmax") {
      r = matchUnfused(ctx, n, opts);
      // A Softmax that is not attention (e.g. a classifier head) is not worth reporting.
      if (typeof r === "string" && r.startsWith("Softmax output does not")) r = undefined;
    } else if (domain === "com.microsoft" && n.opType === "MultiHeadAttention") {
      r = matchMha(ctx, n);
    } else if (domain === "" && n.opType === "Attention") {
      r = matchAttention23(ctx, n);
    } else if (
      domain === "com.microsoft" &&
      ["Attention", "PackedAttention", "PackedMultiHeadAttention", "GroupQueryAttention"]
        .includes(n.opType)
    ) {
      r = `com.microsoft ${n.opType} computes Q and K inside the op; nothing to tap`;
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

/** Every attention core of a model, in graph order (see {@link scanAttention}). */
export function findAttention(model: Model, opts: FindAttentionOptions = {}): AttentionCore[] {
  return scanAttention(model, opts).cores;
}
