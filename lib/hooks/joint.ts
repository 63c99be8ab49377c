/**
 * Joint attention (MMDiT: SD3, Flux, the embedded DiT): text and image tokens in ONE softmax.
 *
 * Finding: a core is joint when its Q, followed back through token-preserving ops (casts,
 * element-wise ops such as qk-RMSNorm and rotary embeddings, transposes and reshapes, and, for a
 * single-stream block, the q projection and the adaLN modulation into the residual stream),
 * reaches a `Concat` along the token axis of two parts whose output depends on the latent input.
 * `"double"`: the Concat sits between the q/k projections and the score MatMul (MMDiT's
 * double-stream block: separate text/image projections, one attention); `"single"`: a projection
 * MatMul lies between (Flux's single-stream block: one sequence already holding both). Which part
 * is text comes from the graph where it can (the part that does not depend on the latent input,
 * at the first block), else from the order of an earlier joint core, else from the model config
 * ({@link JointOptions.textFirst}). The text token count L is the conditioning's sequence length
 * at run time, so {@link jointRanges} needs only the joint length N.
 *
 * Tapping: a joint core's Q and K are `[heads, N, d]` over the whole sequence. ISAC's maps want
 * SA (image→image) and CA (image→text) blocks. Rows of a block cut from the joint probabilities
 * sum to the share of attention that went to that modality, not to 1; there are two choices:
 * - `"renormalise"` (the default, and what {@link splitJointTap} feeds the controls): each block's
 *   rows are renormalised to sum to 1. This equals a softmax over that block's keys alone, so the
 *   block is exactly a self- or cross-attention tap on sliced Q and K, ISAC's row-stochastic maps
 *   (Eq. 1–2) hold, and gradients and steering biases are exact;
 * - `"joint"`: the raw blocks of the joint softmax (rows of SA and CA together sum to 1), for
 *   analysis of how attention splits between the modalities ({@link jointBlocks}).
 * Steering biases given per SA/CA block are placed on the same blocks of the joint scores
 * ({@link jointBias}); text-query rows and the image→text/text→image corners not asked for stay 0.
 *
 * Source: Esser et al. 2024 (SD3, §4 "MM-DiT"); Black Forest Labs' Flux single/double stream
 * blocks; diffusers' `JointAttnProcessor2_0` and `FluxAttnProcessor`.
 *
 * @module
 */
import { AttnkitError, check } from "../errors.ts";
import { constantNumbers, producerMap, topologicalOrder } from "../onnx/graph.ts";
import type { Model, NodeProto } from "../onnx/types.ts";
import { sizeOf, type Tensor, tensor } from "../tensor.ts";
import type { AttentionTap, TapGrad } from "../attention/types.ts";
import type { AttentionCore } from "./find.ts";

/** What the graph (or the config) says about one joint-attention core. */
export interface JointAttention {
  /** MMDiT double-stream block (separate projections) or single-stream block (one sequence). */
  block: "double" | "single";
  /** Text tokens come first in the joint sequence (Flux, the embedded DiT) or last (SD3). */
  textFirst: boolean;
  /** Whether the text/image order was read from the graph or taken from the config. */
  source: "graph" | "config";
}

/** Options of {@link markJointCores}. */
export interface JointOptions {
  /**
   * Graph inputs holding the noisy latent (default: every data input that is not conditioning
   * and whose name matches /sample|latent|hidden_states|^x$/ but not /encoder/).
   */
  latent?: readonly string[];
  /** Order to use where the graph does not tell it (from the model config). */
  textFirst?: boolean;
  /**
   * Config fallback when the graph shows no joint core at all (e.g. fused forms): the block kind
   * of each core in graph order (`null`: not joint). Needs {@link textFirst}.
   */
  blocks?: readonly ("double" | "single" | null)[];
}

/** Token ranges `[start, end)` of the text and the image tokens in a joint sequence. */
export interface JointTokens {
  /** Text tokens. */
  readonly text: readonly [number, number];
  /** Image tokens. */
  readonly image: readonly [number, number];
}

/** Row normalisation of a block cut from the joint probabilities; see the module doc. */
export type JointRows = "renormalise" | "joint";

const LATENT = /sample|latent|hidden_states|^x$/i;
const PASS_THROUGH = new Set([
  "Cast",
  "Identity",
  "Neg",
  "Transpose",
  "Reshape",
  "Unsqueeze",
  "Squeeze",
  "Flatten",
  "Split",
  "Slice",
  "Sqrt",
  "Tanh",
  "Sigmoid",
  "Erf",
  "Mul",
  "Add",
  "Sub",
  "Div",
  "Pow",
  "ReduceMean",
  "LayerNormalization",
  "SimplifiedLayerNormalization",
  "RMSNormalization",
  "Concat",
]);

/** Graph inputs each tensor depends on (initializers excluded, shapes are not data). */
function dependencies(model: Model): Map<string, Set<string>> {
  const g = model.graph;
  const deps = new Map<string, Set<string>>();
  const inits = new Set(g.initializer.map((t) => t.name));
  for (const v of g.input) if (!inits.has(v.name)) deps.set(v.name, new Set([v.name]));
  const empty = new Set<string>();
  for (const n of topologicalOrder(g)) {
    let acc: Set<string> | undefined;
    const shapeOnly = n.opType === "Shape" || n.opType === "Size";
    for (const i of shapeOnly ? [] : n.input) {
      const d = deps.get(i);
      if (!d || d.size === 0) continue;
      if (!acc) acc = d;
      else if (acc !== d) {
        acc = new Set([...acc, ...d]);
      }
    }
    for (const o of n.output) deps.set(o, acc ?? empty);
  }
  return deps;
}

/** The token Concat on Q's path, and whether a projection MatMul lies between. */
interface Found {
  concat: NodeProto;
  crossedProjection: boolean;
}

/**
 * Breadth-first from `q` through token-preserving ops to the first token-axis Concat: two
 * non-constant parts, not on the last (channel) axis, its output depending on the latent. At
 * most one projection MatMul is crossed (into the residual stream of a single-stream block); a
 * second one would lead into an earlier block's output projection.
 */
function findTokenConcat(
  model: Model,
  q: string,
  producers: Map<string, NodeProto>,
  dependsOnLatent: (t: string) => boolean,
): Found | undefined {
  const g = model.graph;
  const inits = new Set(g.initializer.map((i) => i.name));
  const isData = (t: string) => t !== "" && !inits.has(t) && constantNumbers(g, t) === undefined;
  const queue: { t: string; crossed: boolean }[] = [{ t: q, crossed: false }];
  const seen = new Set<string>([q]);
  for (let head = 0; head < queue.length && head < 400; head++) {
    const { t, crossed } = queue[head];
    const p = producers.get(t);
    if (!p || (p.domain ?? "") !== "" || !dependsOnLatent(t)) continue;
    let next: string[] = [];
    let crossing = crossed;
    if (p.opType === "Concat") {
      const axis = Number(p.attribute.find((a) => a.name === "axis")?.i ?? 0);
      // The last axis holds channels (rotate-half, pair stacking, the single block's [attn, mlp]).
      if (axis !== -1 && p.input.length === 2 && p.input.every(isData)) {
        return { concat: p, crossedProjection: crossed };
      }
      next = p.input.filter(isData);
    } else if (p.opType === "MatMul" || p.opType === "Gemm") {
      // A projection (constant weight): follow the activations into the residual stream, once.
      if (crossed || isData(p.input[1])) continue;
      next = [p.input[0]];
      crossing = true;
    } else if (p.opType === "Div" || p.opType === "Pow" || p.opType === "ReduceMean") {
      next = [p.input[0]];
    } else if (PASS_THROUGH.has(p.opType)) {
      next = p.input.filter(isData);
    } else continue;
    for (const i of next) {
      if (!seen.has(i)) {
        seen.add(i);
        queue.push({ t: i, crossed: crossing });
      }
    }
  }
  return undefined;
}

/**
 * The cores with `joint` set on those that are joint attention (see the module doc); other cores
 * are returned unchanged. Used by `findAttention`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { findAttention, onnx } from "@attnkit/attnkit";
 * // findAttention calls markJointCores itself; the embedded DiT's attention is all joint.
 * const url = new URL("../../weights/shapes-dit/transformer.onnx", import.meta.url);
 * const model = onnx.decodeModel(await Deno.readFile(url));
 * const cores = findAttention(model, { conditioning: ["encoder_hidden_states"] });
 * assert.ok(cores.length > 0 && cores.every((c) => c.joint !== undefined));
 * ```
 */
export function markJointCores(
  model: Model,
  cores: readonly AttentionCore[],
  conditioning: ReadonlySet<string>,
  opts: JointOptions = {},
): AttentionCore[] {
  const g = model.graph;
  const inits = new Set(g.initializer.map((t) => t.name));
  const dataInputs = g.input.map((v) => v.name).filter((x) => !inits.has(x));
  for (const l of opts.latent ?? []) {
    if (!dataInputs.includes(l)) {
      throw new AttnkitError("latent", `"${l}" is not a graph input (${dataInputs.join(", ")})`);
    }
  }
  const latent = new Set(
    opts.latent ??
      dataInputs.filter((x) => !conditioning.has(x) && LATENT.test(x) && !/encoder/i.test(x)),
  );
  if (latent.size === 0 || cores.length === 0) return applyFallback(cores, opts);
  const deps = dependencies(model);
  const onLatent = (t: string) => [...(deps.get(t) ?? [])].some((x) => latent.has(x));
  const producers = producerMap(g);
  const found = cores.map((c) => findTokenConcat(model, c.q, producers, onLatent));
  // The order is read where a Concat's parts still differ in depending on the latent (the first
  // block: text states have not yet attended to the image); later blocks share it.
  let order: boolean | undefined;
  for (const f of found) {
    if (!f) continue;
    const [a, b] = f.concat.input;
    if (onLatent(a) !== onLatent(b)) {
      order = !onLatent(a);
      break;
    }
  }
  const textFirst = order ?? opts.textFirst;
  if (textFirst === undefined || !found.some((f) => f)) return applyFallback(cores, opts);
  const source = order !== undefined ? "graph" as const : "config" as const;
  return cores.map((c, i) => {
    const f = found[i];
    if (!f) return c;
    const block: JointAttention["block"] = f.crossedProjection ? "single" : "double";
    return { ...c, joint: { block, textFirst, source } };
  });
}

function applyFallback(cores: readonly AttentionCore[], opts: JointOptions): AttentionCore[] {
  if (!opts.blocks) return [...cores];
  check(
    opts.blocks.length === cores.length,
    "blocks",
    `expected one entry per attention core (${cores.length}), got ${opts.blocks.length}`,
  );
  check(opts.textFirst !== undefined, "textFirst", "needed with blocks (the token order)");
  return cores.map((c, i) => {
    const block = opts.blocks![i];
    return block
      ? { ...c, joint: { block, textFirst: opts.textFirst!, source: "config" as const } }
      : c;
  });
}

/**
 * Text and image token ranges of a joint sequence of `n` tokens holding `textTokens` text tokens.
 * Throws an {@link AttnkitError} naming `n` when there is no image token.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hooks } from "@attnkit/attnkit";
 * const r = hooks.jointRanges({ block: "double", textFirst: true, source: "graph" }, 96, 32);
 * assert.deepEqual(r, { text: [0, 32], image: [32, 96] });
 * ```
 */
export function jointRanges(j: JointAttention, n: number, textTokens: number): JointTokens {
  check(
    Number.isInteger(textTokens) && textTokens >= 1,
    "textTokens",
    `must be a positive integer, got ${textTokens}`,
  );
  check(
    Number.isInteger(n) && n > textTokens,
    "n",
    `a joint sequence of ${n} tokens cannot hold ${textTokens} text tokens and any image token`,
  );
  return j.textFirst
    ? { text: [0, textTokens], image: [textTokens, n] }
    : { text: [n - textTokens, n], image: [0, n - textTokens] };
}

function expectHeads(x: Tensor, argument: string): [number, number, number] {
  check(x.shape.length === 3, argument, `expected [heads, N, d], got [${x.shape}]`);
  check(sizeOf(x.shape) === x.data.length, argument, "data length does not match its shape");
  return x.shape as unknown as [number, number, number];
}

/**
 * Tokens `[s, e)` of a `[heads, N, d]` tensor, as a new `[heads, e − s, d]` tensor.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hooks, tensor } from "@attnkit/attnkit";
 * // One head, 2 text tokens then 4 image tokens (a 2×2 grid), width 2.
 * const q = tensor([1, 6, 2], [1, 0, 0, 1, 1, 1, 0, 0, 2, 0, 0, 2]);
 * const k = tensor([1, 6, 2], [0, 1, 1, 0, 1, 1, 1, 0, 0, 1, 1, 1]);
 * const ranges = { text: [0, 2], image: [2, 6] } as const;
 * const imageQ = hooks.sliceTokens(q, [2, 6]);
 * assert.deepEqual(imageQ.shape, [1, 4, 2]);
 * assert.deepEqual([...imageQ.data.subarray(0, 2)], [1, 1]);
 * ```
 */
export function sliceTokens(x: Tensor, range: readonly [number, number]): Tensor {
  const [h, n, d] = expectHeads(x, "x");
  const [s, e] = range;
  check(0 <= s && s < e && e <= n, "range", `[${s}, ${e}) is not inside [0, ${n})`);
  const out = new Float32Array(h * (e - s) * d);
  for (let hi = 0; hi < h; hi++) {
    out.set(x.data.subarray((hi * n + s) * d, (hi * n + e) * d), hi * (e - s) * d);
  }
  return tensor([h, e - s, d], out);
}

/**
 * ISAC's SA and CA taps of one joint core: `[self, cross]` with q = the image queries, k = the
 * image keys (self) or the text keys (cross). Their softmaxes are the joint probabilities' blocks
 * with rows renormalised (the `"renormalise"` choice). `size` is the image token grid `[h, w]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hooks, tensor } from "@attnkit/attnkit";
 * // One head, 2 text tokens then 4 image tokens (a 2×2 grid), width 2.
 * const q = tensor([1, 6, 2], [1, 0, 0, 1, 1, 1, 0, 0, 2, 0, 0, 2]);
 * const k = tensor([1, 6, 2], [0, 1, 1, 0, 1, 1, 1, 0, 0, 1, 1, 1]);
 * const ranges = { text: [0, 2], image: [2, 6] } as const;
 * const [sa, ca] = hooks.splitJointTap(q, k, ranges, [2, 2]);
 * assert.deepEqual([sa.kind, sa.k.shape, ca.kind, ca.k.shape], ["self", [1, 4, 2], "cross", [1, 2, 2]]);
 * ```
 */
export function splitJointTap(
  q: Tensor,
  k: Tensor,
  ranges: JointTokens,
  size: readonly [number, number],
): [AttentionTap, AttentionTap] {
  const [, n] = expectHeads(q, "q");
  const [, nk] = expectHeads(k, "k");
  check(nk === n, "k", `joint attention needs as many keys as queries (${n}), got ${nk}`);
  const ni = ranges.image[1] - ranges.image[0];
  check(size[0] * size[1] === ni, "size", `[${size}] does not hold ${ni} image tokens`);
  const qi = sliceTokens(q, ranges.image);
  return [
    { kind: "self", q: qi, k: sliceTokens(k, ranges.image), size },
    { kind: "cross", q: qi, k: sliceTokens(k, ranges.text), size },
  ];
}

/** Adds `part` `[h, e−s, d]` into tokens `[s, e)` of `into` `[h, n, d]`. */
function addTokens(into: Float32Array, n: number, part: Tensor, range: readonly [number, number]) {
  const [h, m, d] = expectHeads(part, "grad");
  check(m === range[1] - range[0], "grad", `expected ${range[1] - range[0]} tokens, got ${m}`);
  for (let hi = 0; hi < h; hi++) {
    for (let i = 0; i < m * d; i++) into[(hi * n + range[0]) * d + i] += part.data[hi * m * d + i];
  }
}

/**
 * The joint core's dL/dq and dL/dk `[heads, n, d]` from the gradients of its SA and CA taps (as
 * {@link splitJointTap} made them): the image queries get both, text queries none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hooks, tensor } from "@attnkit/attnkit";
 * // One head, 2 text tokens then 4 image tokens (a 2×2 grid), width 2.
 * const q = tensor([1, 6, 2], [1, 0, 0, 1, 1, 1, 0, 0, 2, 0, 0, 2]);
 * const k = tensor([1, 6, 2], [0, 1, 1, 0, 1, 1, 1, 0, 0, 1, 1, 1]);
 * const ranges = { text: [0, 2], image: [2, 6] } as const;
 * const ones = (n: number) => tensor([1, n, 2], new Float32Array(n * 2).fill(1));
 * const g = hooks.mergeJointGrads({ dq: ones(4), dk: ones(4) }, { dq: ones(4), dk: ones(2) }, ranges, 6);
 * assert.deepEqual([...g.dq.data], [0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2]); // text queries get none
 * assert.deepEqual([...g.dk.data], new Array(12).fill(1));
 * ```
 */
export function mergeJointGrads(
  sa: TapGrad,
  ca: TapGrad,
  ranges: JointTokens,
  n: number,
): TapGrad {
  const [h, , d] = expectHeads(sa.dq, "sa.dq");
  const dq = new Float32Array(h * n * d), dk = new Float32Array(h * n * d);
  addTokens(dq, n, sa.dq, ranges.image);
  addTokens(dq, n, ca.dq, ranges.image);
  addTokens(dk, n, sa.dk, ranges.image);
  addTokens(dk, n, ca.dk, ranges.text);
  return { dq: tensor([h, n, d], dq), dk: tensor([h, n, d], dk) };
}

/**
 * One additive score bias `[B, H, n, n]` for a joint core from biases on its SA block
 * (broadcastable `[b, h, Ni, Ni]`) and CA block (`[b, h, Ni, L]`); either may be missing, both
 * missing gives null. Batch and head axes of size 1 broadcast.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hooks, tensor } from "@attnkit/attnkit";
 * // One head, 2 text tokens then 4 image tokens (a 2×2 grid), width 2.
 * const q = tensor([1, 6, 2], [1, 0, 0, 1, 1, 1, 0, 0, 2, 0, 0, 2]);
 * const k = tensor([1, 6, 2], [0, 1, 1, 0, 1, 1, 1, 0, 0, 1, 1, 1]);
 * const ranges = { text: [0, 2], image: [2, 6] } as const;
 * const caBias = tensor([1, 1, 4, 2], new Float32Array(8).fill(-5));
 * const bias = hooks.jointBias(null, caBias, ranges, 6)!;
 * assert.deepEqual(bias.shape, [1, 1, 6, 6]);
 * assert.equal(bias.data[2 * 6 + 0], -5); // image row 0, text key 0
 * assert.equal(bias.data[2 * 6 + 2], 0); // image row 0, image key 0: untouched
 * ```
 */
export function jointBias(
  sa: Tensor | null | undefined,
  ca: Tensor | null | undefined,
  ranges: JointTokens,
  n: number,
): Tensor | null {
  if (!sa && !ca) return null;
  const ni = ranges.image[1] - ranges.image[0], nt = ranges.text[1] - ranges.text[0];
  const parts: [Tensor, readonly [number, number], number, string][] = [];
  if (sa) parts.push([sa, ranges.image, ni, "bias (self block)"]);
  if (ca) parts.push([ca, ranges.text, nt, "bias (cross block)"]);
  let B = 1, H = 1;
  for (const [t, , nk, what] of parts) {
    check(t.shape.length === 4, what, `expected [B, heads, Nq, Nk], got [${t.shape}]`);
    const [b, h, nq, k] = t.shape;
    check(nq === ni && k === nk, what, `expected [·, ·, ${ni}, ${nk}], got [${t.shape}]`);
    for (const [v, cur, ax] of [[b, B, "batch"], [h, H, "heads"]] as const) {
      check(v === 1 || cur === 1 || v === cur, what, `${ax} ${v} does not broadcast with ${cur}`);
    }
    B = Math.max(B, b);
    H = Math.max(H, h);
  }
  const out = new Float32Array(B * H * n * n);
  for (const [t, keys, nk] of parts) {
    const [b, h] = t.shape;
    for (let bi = 0; bi < B; bi++) {
      for (let hi = 0; hi < H; hi++) {
        const src = ((b === 1 ? 0 : bi) * h + (h === 1 ? 0 : hi)) * ni * nk;
        const dst = (bi * H + hi) * n * n;
        for (let i = 0; i < ni; i++) {
          const row = dst + (ranges.image[0] + i) * n + keys[0];
          for (let j = 0; j < nk; j++) out[row + j] += t.data[src + i * nk + j];
        }
      }
    }
  }
  return tensor([B, H, n, n], out);
}

/**
 * The SA `[heads, Ni, Ni]` and CA `[heads, Ni, L]` blocks of the joint probabilities
 * softmax(q kᵀ · scale) of one item (`q`, `k`: `[heads, n, d]`), rows renormalised per block
 * (`"renormalise"`, default) or raw (`"joint"`); see the module doc. `scale` defaults to 1/√d.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hooks, tensor } from "@attnkit/attnkit";
 * // One head, 2 text tokens then 4 image tokens (a 2×2 grid), width 2.
 * const q = tensor([1, 6, 2], [1, 0, 0, 1, 1, 1, 0, 0, 2, 0, 0, 2]);
 * const k = tensor([1, 6, 2], [0, 1, 1, 0, 1, 1, 1, 0, 0, 1, 1, 1]);
 * const ranges = { text: [0, 2], image: [2, 6] } as const;
 * const joint = hooks.jointBlocks(q, k, ranges, { rows: "joint" });
 * const renorm = hooks.jointBlocks(q, k, ranges);
 * const row = (t: { data: Float32Array }, w: number) => t.data.subarray(0, w).reduce((a, b) => a + b, 0);
 * assert.ok(Math.abs(row(joint.self, 4) + row(joint.cross, 2) - 1) < 1e-6); // one joint softmax
 * assert.ok(Math.abs(row(renorm.self, 4) - 1) < 1e-6); // each block renormalised
 * ```
 */
export function jointBlocks(
  q: Tensor,
  k: Tensor,
  ranges: JointTokens,
  opts: { rows?: JointRows; scale?: number } = {},
): { self: Tensor; cross: Tensor } {
  const [h, n, d] = expectHeads(q, "q");
  const [hk, nk, dk] = expectHeads(k, "k");
  check(hk === h && nk === n && dk === d, "k", `expected [${h}, ${n}, ${d}], got [${k.shape}]`);
  const rows = opts.rows ?? "renormalise";
  check(rows === "renormalise" || rows === "joint", "rows", `unknown choice "${rows}"`);
  const scale = opts.scale ?? 1 / Math.sqrt(d);
  const [i0, i1] = ranges.image, [t0, t1] = ranges.text;
  const ni = i1 - i0, nt = t1 - t0;
  const self = new Float32Array(h * ni * ni), cross = new Float32Array(h * ni * nt);
  const s = new Float64Array(n);
  for (let hi = 0; hi < h; hi++) {
    for (let i = 0; i < ni; i++) {
      const qo = (hi * n + i0 + i) * d;
      let mx = -Infinity;
      for (let j = 0; j < n; j++) {
        let acc = 0;
        const ko = (hi * n + j) * d;
        for (let c = 0; c < d; c++) acc += q.data[qo + c] * k.data[ko + c];
        s[j] = acc * scale;
        if (s[j] > mx) mx = s[j];
      }
      let zAll = 0, zImg = 0, zTxt = 0;
      for (let j = 0; j < n; j++) {
        s[j] = Math.exp(s[j] - mx);
        zAll += s[j];
        if (j >= i0 && j < i1) zImg += s[j];
        if (j >= t0 && j < t1) zTxt += s[j];
      }
      const zi = rows === "joint" ? zAll : zImg, zt = rows === "joint" ? zAll : zTxt;
      for (let j = 0; j < ni; j++) self[(hi * ni + i) * ni + j] = s[i0 + j] / zi;
      for (let j = 0; j < nt; j++) cross[(hi * ni + i) * nt + j] = s[t0 + j] / zt;
    }
  }
  return { self: tensor([h, ni, ni], self), cross: tensor([h, ni, nt], cross) };
}

const ELEMENTWISE = new Set(["Add", "Sub", "Mul", "Div", "Neg", "Cast", "Identity", "Concat"]);

/**
 * `layoutOf(t)` for the first tensor it recognises, breadth-first back from `t` through
 * element-wise ops and Concats. Q and K of joint attention reach the score MatMul as a Concat of
 * the text and image parts (SD3) or through qk-RMSNorm and rotary embeddings (Flux, the embedded
 * DiT); their layout is that of the reshapes behind them. Used by `findAttention`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { throughElementwise } from "./joint.ts";
 * // q = Mul(x, scale): the layout of q is found through the Mul, at x.
 * const producers = new Map([["q", { opType: "Mul", input: ["x", "scale"], output: ["q"], attribute: [] }]]);
 * const found = throughElementwise(producers, (t) => t === "scale", "q", (t) => (t === "x" ? "x's layout" : undefined));
 * assert.equal(found, "x's layout");
 * ```
 */
export function throughElementwise<T>(
  producers: ReadonlyMap<string, NodeProto>,
  isConstant: (t: string) => boolean,
  t: string,
  layoutOf: (t: string) => T | undefined,
): T | undefined {
  const queue = [t];
  const seen = new Set(queue);
  for (let head = 0; head < queue.length && head < 64; head++) {
    const p = producers.get(queue[head]);
    if (!p || (p.domain ?? "") !== "" || !ELEMENTWISE.has(p.opType)) continue;
    for (const i of p.input) {
      if (i === "" || seen.has(i) || isConstant(i)) continue;
      const found = layoutOf(i);
      if (found !== undefined) return found;
      seen.add(i);
      queue.push(i);
    }
  }
  return undefined;
}
