/**
 * Rules for convolutions (any spatial rank, with pads, strides, dilations and groups).
 *
 * Conv: the input gradient is the transposed convolution of g with the same weights
 * (ConvTranspose; output_padding restores sizes the strided forward dropped), written as a plain
 * Conv with flipped, channel-swapped weights when the forward has stride 1 (faster on the CPU). The weight gradient
 * — written only when a weight is differentiated — is itself a convolution: with batch and
 * channels swapped, X correlated with g, where the forward's stride becomes the dilation and the
 * forward's dilation the stride; groups are carried by folding the group index into the batch.
 * ConvTranspose: the input gradient is the Conv with the same attributes (its adjoint).
 *
 * @module
 */
import { attrInt, attrInts, attrString } from "../attrs.ts";
import type { Emitter } from "../emit.ts";
import { type DimV, isStatic } from "../facts.ts";
import type { GradContext, GradRule, RuleTable } from "../rule.ts";
import { needRank, ruleError } from "../rule.ts";

interface ConvGeometry {
  sp: number;
  kernel: DimV[];
  strides: number[];
  dilations: number[];
  pads: number[];
  group: number;
}

/** Explicit pads for auto_pad SAME_* (needs static spatial sizes). */
function samePads(
  mode: string,
  sizes: DimV[],
  kernel: DimV[],
  strides: number[],
  dil: number[],
): number[] | undefined {
  const sp = sizes.length;
  const pads = Array(2 * sp).fill(0);
  for (let i = 0; i < sp; i++) {
    const d = sizes[i];
    const k = kernel[i];
    if (typeof d !== "number" || typeof k !== "number") return undefined;
    const out = Math.ceil(d / strides[i]);
    const total = Math.max(0, (out - 1) * strides[i] + (k - 1) * dil[i] + 1 - d);
    const small = Math.floor(total / 2);
    pads[i] = mode === "SAME_UPPER" ? small : total - small;
    pads[i + sp] = total - pads[i];
  }
  return pads;
}

function geometry(ctx: GradContext, x: string, w: string): ConvGeometry {
  const { em, node } = ctx;
  const sp = needRank(ctx, x) - 2;
  const wd = em.dims(w);
  const kernel: DimV[] = attrInts(node, "kernel_shape") ?? wd?.slice(2) ??
    Array(sp).fill(undefined);
  const strides = attrInts(node, "strides") ?? Array(sp).fill(1);
  const dilations = attrInts(node, "dilations") ?? Array(sp).fill(1);
  const autoPad = attrString(node, "auto_pad", "NOTSET");
  let pads = attrInts(node, "pads") ?? Array(2 * sp).fill(0);
  if (autoPad === "VALID") pads = Array(2 * sp).fill(0);
  else if (autoPad === "SAME_UPPER" || autoPad === "SAME_LOWER") {
    const p = samePads(autoPad, em.dims(x)!.slice(2), kernel, strides, dilations);
    if (!p) {
      throw ruleError(node, `auto_pad ${autoPad} needs static spatial sizes and kernel shape`);
    }
    pads = p;
  }
  return { sp, kernel, strides, dilations, pads, group: attrInt(node, "group", 1) };
}

/** A 1-D int64 shape from constant pieces and run-time pieces. */
function shapeVec(em: Emitter, parts: (number[] | string)[]): string {
  if (parts.every((p) => Array.isArray(p))) return em.i64((parts as number[][]).flat());
  const inputs = parts.map((p) => (Array.isArray(p) ? em.i64(p) : p));
  return em.op("Concat", inputs, { axis: 0 });
}

/** Axes [from, rank) of x's shape, as constant pieces where known. */
function tailShape(em: Emitter, x: string, from: number): number[] | string {
  const d = em.dims(x)!.slice(from);
  if (isStatic(d)) return d;
  return em.op("Slice", [em.shapeOf(x), em.i64([from]), em.i64([2 ** 62])]);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

/**
 * For a stride-1, undilated, ungrouped Conv whose pads are at most kernel − 1: dX as a plain Conv
 * of g with the weights' channels swapped and their taps flipped, pads kernel − 1 − pad. The same
 * sum as the ConvTranspose, but onnxruntime's CPU Conv (NCHWc, im2col-free) runs it about twice
 * as fast as its ConvTranspose; the weight rearrangement depends on initializers only, so the
 * runtime folds it once.
 */
function convInputGradFlipped(ctx: GradContext, geo: ConvGeometry): string | undefined {
  const { em, node } = ctx;
  const { sp, kernel, pads } = geo;
  if (geo.group !== 1 || geo.strides.some((s) => s !== 1) || geo.dilations.some((d) => d !== 1)) {
    return undefined;
  }
  if (!kernel.every((k) => typeof k === "number")) return undefined;
  const k = kernel as number[];
  if (pads.some((p, i) => p < 0 || p > k[i % sp] - 1)) return undefined;
  const [x, w] = node.input;
  const swapped = em.op("Transpose", [w], { perm: [1, 0, ...range(2, 2 + sp)] });
  const flipped = em.op("Slice", [
    swapped,
    em.i64(Array(sp).fill(-1)),
    em.i64(Array(sp).fill(-(2 ** 62))),
    em.i64(range(2, 2 + sp)),
    em.i64(Array(sp).fill(-1)),
  ]);
  return em.op("Conv", [ctx.dy[0]!, flipped], {
    kernel_shape: k,
    pads: pads.map((p, i) => k[i % sp] - 1 - p),
    strides: Array(sp).fill(1),
    dilations: Array(sp).fill(1),
    group: 1,
  }, { dims: em.dims(x) });
}

/** dX = ConvTranspose(g, W) with output_padding fixing sizes; cropped when sizes are unknown. */
function convInputGrad(ctx: GradContext, geo: ConvGeometry): string {
  const flipped = convInputGradFlipped(ctx, geo);
  if (flipped !== undefined) return flipped;
  const { em, node } = ctx;
  const [x, w] = node.input;
  const g = ctx.dy[0]!;
  const xd = em.dims(x)!;
  const yd = em.dims(node.output[0]);
  const outPad: number[] = [];
  let exact = true;
  for (let i = 0; i < geo.sp; i++) {
    const h = xd[2 + i];
    const ho = yd?.[2 + i];
    const k = geo.kernel[i];
    const s = geo.strides[i];
    if (typeof h === "number" && typeof ho === "number" && typeof k === "number") {
      const natural = s * (ho - 1) + (k - 1) * geo.dilations[i] + 1 - geo.pads[i] -
        geo.pads[i + geo.sp];
      outPad.push(h - natural);
    } else {
      exact = exact && s === 1;
      outPad.push(s - 1);
    }
  }
  const attrs: Record<string, number[] | number> = {
    strides: geo.strides,
    pads: geo.pads,
    dilations: geo.dilations,
    group: geo.group,
    output_padding: outPad,
  };
  if (geo.kernel.every((k) => typeof k === "number")) attrs.kernel_shape = geo.kernel as number[];
  const dx = em.op("ConvTranspose", [g, w], attrs, { dims: exact ? xd : undefined });
  if (exact) return dx;
  // With unknown sizes the widest output_padding over-covers; the extra rows receive no
  // contribution from X's own positions, so cropping to X's size is exact.
  const ends = tailShape(em, x, 2);
  return em.op(
    "Slice",
    [
      dx,
      em.i64(Array(geo.sp).fill(0)),
      Array.isArray(ends) ? em.i64(ends) : ends,
      em.i64(range(2, 2 + geo.sp)),
    ],
    {},
    { dims: xd },
  );
}

/** dW as a convolution of X (batch ↔ channels) with g, cropped to the kernel size. */
function convWeightGrad(ctx: GradContext, geo: ConvGeometry): string {
  const { em, node } = ctx;
  const [x, w] = node.input;
  const g = ctx.dy[0]!;
  const sp = geo.sp;
  const G = geo.group;
  const spatialX = tailShape(em, x, 2);
  const spatialY = tailShape(em, node.output[0], 2);
  const swap = [1, 0, ...range(2, 2 + sp)];
  let xs: string;
  let gs: string;
  if (G === 1) {
    xs = em.transpose(x, swap);
    gs = em.transpose(g, swap);
  } else {
    // X [N, C, …] → [N, G, C/G, …] → [C/G, G, N, …] → [C/G, G·N, …]
    const x5 = em.op("Reshape", [x, shapeVec(em, [[0, G, -1], spatialX])]);
    const xt = em.op("Transpose", [x5], { perm: [2, 1, 0, ...range(3, 3 + sp)] });
    xs = em.op("Reshape", [xt, shapeVec(em, [[0, -1], spatialX])]);
    // g [N, M, …] → [N, G, M/G, …] → [G, M/G, N, …] → [M, N, …]
    const g5 = em.op("Reshape", [g, shapeVec(em, [[0, G, -1], spatialY])]);
    const gt = em.op("Transpose", [g5], { perm: [1, 2, 0, ...range(3, 3 + sp)] });
    const n = em.dimOf(x, 0);
    gs = em.op("Reshape", [gt, shapeVec(em, [[-1], n, spatialY])]);
  }
  const corr = em.op("Conv", [xs, gs], {
    strides: geo.dilations,
    dilations: geo.strides,
    pads: geo.pads,
    group: G,
  });
  const wShape = tailShape(em, w, 2);
  const cropped = em.op("Slice", [
    corr,
    em.i64(Array(sp).fill(0)),
    Array.isArray(wShape) ? em.i64(wShape) : wShape,
    em.i64(range(2, 2 + sp)),
  ]);
  return em.op("Transpose", [cropped], { perm: swap }, { dims: em.dims(w) });
}

const conv: GradRule = {
  grad: (ctx) => {
    const [x, w, b] = ctx.node.input;
    const geo = geometry(ctx, x, w);
    const out: (string | undefined)[] = [undefined, undefined, undefined];
    if (ctx.wants[0]) out[0] = convInputGrad(ctx, geo);
    if (ctx.wants[1]) out[1] = convWeightGrad(ctx, geo);
    if (ctx.wants[2] && b) {
      out[2] = ctx.em.reduceSum(ctx.dy[0]!, [0, ...range(2, 2 + geo.sp)], false);
    }
    return out;
  },
};

const convTranspose: GradRule = {
  grad: (ctx) => {
    const { em, node } = ctx;
    if (ctx.wants[1]) {
      throw ruleError(node, "the weight gradient of ConvTranspose is not implemented");
    }
    if (attrInts(node, "output_shape") || attrString(node, "auto_pad", "NOTSET") !== "NOTSET") {
      throw ruleError(
        node,
        "ConvTranspose with output_shape or auto_pad is not supported; use explicit pads",
      );
    }
    const [x, w, b] = node.input;
    const sp = needRank(ctx, x) - 2;
    const attrs: Record<string, number[] | number> = {
      strides: attrInts(node, "strides") ?? Array(sp).fill(1),
      pads: attrInts(node, "pads") ?? Array(2 * sp).fill(0),
      dilations: attrInts(node, "dilations") ?? Array(sp).fill(1),
      group: attrInt(node, "group", 1),
    };
    const out: (string | undefined)[] = [undefined, undefined, undefined];
    if (ctx.wants[0]) out[0] = em.op("Conv", [ctx.dy[0]!, w], attrs, { dims: em.dims(x) });
    if (ctx.wants[2] && b) out[2] = em.reduceSum(ctx.dy[0]!, [0, ...range(2, 2 + sp)], false);
    return out;
  },
};

/** Convolution rules. */
export const convRules: RuleTable = { Conv: conv, ConvTranspose: convTranspose };
