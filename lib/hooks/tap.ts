/**
 * Taps attention cores: returns a new model whose graph also outputs, per core, Q and K in
 * [B, heads, N, d] layout (the reshapes are added to the graph, so the runtime needs no layout
 * logic), optionally the head-averaged probabilities [B, Nq, Nk], and the scale when the model
 * computes it at run time. Every tap output is float32, whatever the model computes in (float16
 * and bfloat16 models are tapped through Casts), so the maths downstream runs in float32.
 * For fused ops the taps rebuild Q and K and apply the op's scale and masks (onnxruntime
 * contrib-op semantics: bias added after projection, masked scores get `mask_filter_value`).
 *
 * @module
 */
import { AttnkitError } from "../errors.ts";
import { DataType, type Model, type ValueInfoProto } from "../onnx/types.ts";
import { elemTypes } from "../onnx/elem_type.ts";
import {
  asFloat32,
  beginEdit,
  emit,
  finishEdit,
  floatConst,
  type GraphEdit,
  int64Const,
  int64Scalar,
  meanOverHeads,
  toBhnd,
  unsqueeze,
} from "./edit.ts";
import type { AttentionCore, AttentionForm, AttentionLayout } from "./find.ts";

/** What one core's tap outputs are and how to read them. */
export interface TapInfo {
  /** Index of the core (as in `findAttention`'s result). */
  core: number;
  /** Self- or cross-attention. */
  kind: "self" | "cross";
  /** The pattern that matched. */
  form: AttentionForm;
  /** Output with Q as [B, heads, Nq, d] (when `qk` was asked). */
  q?: string;
  /** Output with K as [B, kvHeads, Nk, d] (when `qk` was asked). */
  k?: string;
  /** Output with the head-averaged softmax probabilities [B, Nq, Nk] (when `probs` was asked). */
  probs?: string;
  /** Number of heads, if known statically (the Q output's axis 1 says it at run time). */
  heads: number | undefined;
  /**
   * Constant scale on QKᵀ. `undefined` means 1/√d (d = last axis of the Q output) unless
   * `scaleOutput` is set.
   */
  scale: number | undefined;
  /** Output holding the full scale (a scalar) when the model computes it at run time. */
  scaleOutput?: string;
  /** How Q and K were laid out in the model, before the tap reshaped them. */
  sourceLayout: AttentionLayout;
  /**
   * Mask tensors the fused op adds to its scores (key padding, attention bias, boolean mask).
   * The `probs` output applies them; Q and K alone do not carry them.
   */
  masks: string[];
}

/** Options for {@link tapAttention}. */
export interface TapOptions {
  /** Output Q and K (default true). */
  qk?: boolean;
  /** Output head-averaged probabilities (default false). */
  probs?: boolean;
}

function floatOutput(name: string): ValueInfoProto {
  return { name, type: { tensorType: { elemType: DataType.FLOAT } } };
}

/** What the tap-building helpers share for one model. */
interface TapCtx {
  e: GraphEdit;
  elemType: (t: string) => number | undefined;
}

/** `bias[from:to]` along axis 0, with `from`/`to` given as 1-D int64 tensors. */
function sliceVector(c: TapCtx, t: string, from: string, to: string, base: string): string {
  return emit(c.e, "Slice", [t, from, to, int64Const(c.e, `${base}/axis0`, [0])], base);
}

/** The hidden size (last axis) of a [B, N, C] tensor as a 1-D int64 tensor of one element. */
function lastDim(c: TapCtx, t: string, base: string): string {
  const shape = emit(c.e, "Shape", [t], `${base}/shape`);
  return emit(
    c.e,
    "Slice",
    [shape, int64Const(c.e, `${base}/m1`, [-1]), int64Const(c.e, `${base}/end`, [2 ** 62])],
    `${base}/c`,
  );
}

/** Slot `index` of a packed MHA input [B, N, heads, slots, d] as [B, N, heads, d] float32. */
function packedSlot(c: TapCtx, t: string, index: number, base: string): string {
  const g = emit(c.e, "Gather", [t, int64Scalar(c.e, `${base}/slot`, index)], `${base}/slot`, {
    axis: 3,
  });
  return asFloat32(c.e, g, c.elemType, base);
}

/** Slot `index` of a q/k/v bias of equal sizes, as [heads, d] (broadcasts over [B, N, heads, d]). */
function biasSlot(c: TapCtx, core: AttentionCore, index: number, base: string): string {
  const bias = asFloat32(c.e, core.fusedQk!.bias!, c.elemType, `${base}/bias`);
  const split = int64Const(c.e, `${base}/bias_shape`, [3, core.heads!, -1]);
  const r = emit(c.e, "Reshape", [bias, split], `${base}/bias3`);
  return emit(c.e, "Gather", [r, int64Scalar(c.e, `${base}/bias_slot`, index)], `${base}/bias_s`, {
    axis: 0,
  });
}

/**
 * Q and K of a core as float32 [B, heads, N, d], rebuilding whatever a fused op does to its
 * inputs (projection from stacked weights, packed slots, q/k/v bias).
 */
function qkOf(c: TapCtx, core: AttentionCore, base: string): { q: string; k: string } {
  const { e } = c;
  const f = core.fusedQk ?? {};
  if (f.projection) {
    // com.microsoft Attention: Q = X·W[:, 0:Cq] + b[0:Cq], K = X·W[:, Cq:Cq+Ck] + b[Cq:Cq+Ck].
    const [cq, ck] = f.projection.sizes;
    const x = asFloat32(e, core.q, c.elemType, `${base}/x`);
    const w = asFloat32(e, f.projection.weight, c.elemType, `${base}/w`);
    const bias = f.bias ? asFloat32(e, f.bias, c.elemType, `${base}/qkv_bias`) : undefined;
    const project = (from: number, to: number, what: string) => {
      const lo = int64Const(e, `${base}/${what}_from`, [from]);
      const hi = int64Const(e, `${base}/${what}_to`, [to]);
      const ws = emit(
        e,
        "Slice",
        [w, lo, hi, int64Const(e, `${base}/${what}_axis`, [1])],
        `${base}/w${what}`,
      );
      let y = emit(e, "MatMul", [x, ws], `${base}/${what}_proj`);
      if (bias) {
        y = emit(
          e,
          "Add",
          [y, sliceVector(c, bias, lo, hi, `${base}/b${what}`)],
          `${base}/${what}_biased`,
        );
      }
      return toBhnd(e, y, "bnc", core.heads, `${base}/${what}`);
    };
    return { q: project(0, cq, "q"), k: project(cq, cq + ck, "k") };
  }
  let q: string, k: string;
  if (f.packed === "qkv") {
    q = packedSlot(c, core.q, 0, `${base}/q`);
    k = packedSlot(c, core.q, 1, `${base}/k`);
    if (f.bias) {
      q = emit(e, "Add", [q, biasSlot(c, core, 0, `${base}/q`)], `${base}/q_biased`);
      k = emit(e, "Add", [k, biasSlot(c, core, 1, `${base}/k`)], `${base}/k_biased`);
    }
  } else {
    q = core.q;
    if (core.qPerm) q = emit(e, "Transpose", [q], `${base}/q_perm`, { perm: core.qPerm });
    q = asFloat32(e, q, c.elemType, `${base}/q`);
    if (f.packed === "kv") {
      k = packedSlot(c, core.k, 0, `${base}/k`);
      if (f.bias) k = emit(e, "Add", [k, biasSlot(c, core, 1, `${base}/k`)], `${base}/k_biased`);
    } else {
      k = core.k;
      if (core.kTransposed) {
        const perm = core.layout === "bhnd" ? [0, 1, 3, 2] : [0, 2, 1];
        k = emit(e, "Transpose", [k], `${base}/k_untransposed`, { perm });
      }
      if (core.kPerm) k = emit(e, "Transpose", [k], `${base}/k_perm`, { perm: core.kPerm });
      k = asFloat32(e, k, c.elemType, `${base}/k`);
    }
    if (f.bias) {
      // MultiHeadAttention bias = [q bias | k bias | v bias]; Cq = Ck = the query's hidden size.
      const bias = asFloat32(e, f.bias, c.elemType, `${base}/qkv_bias`);
      const cq = lastDim(c, q, `${base}/cq`);
      const zero = int64Const(e, `${base}/zero`, [0]);
      q = emit(e, "Add", [q, sliceVector(c, bias, zero, cq, `${base}/bq`)], `${base}/q_biased`);
      if (core.kLayout === "bnc") {
        // A 4-D (already split) key takes no bias in onnxruntime; a 3-D one takes b[Cq:2Cq].
        const two = emit(e, "Add", [cq, cq], `${base}/c2`);
        k = emit(e, "Add", [k, sliceVector(c, bias, cq, two, `${base}/bk`)], `${base}/k_biased`);
      }
    }
  }
  return {
    q: toBhnd(e, q, core.layout, core.heads, `${base}/q`),
    k: toBhnd(e, k, core.kLayout, core.kvHeads ?? core.heads, `${base}/k`),
  };
}

/**
 * Grouped-query attention: K [B, kvHeads, Nk, d] repeated to [B, heads, Nk, d], query head h
 * reading key head ⌊h / (heads / kvHeads)⌋ (ONNX Attention, opset 23).
 */
function repeatKvHeads(c: TapCtx, core: AttentionCore, k: string, base: string): string {
  const { e } = c;
  const heads = core.heads, kv = core.kvHeads!;
  if (heads === undefined || heads % kv !== 0) {
    throw new AttnkitError(
      "probs",
      `core ${core.index}: ${heads ?? "?"} query heads do not split into ${kv} key heads`,
    );
  }
  const k5 = unsqueeze(e, k, [2], `${base}/k5`);
  const shape = emit(e, "Shape", [k5], `${base}/k5_shape`);
  const g = int64Const(e, `${base}/group`, [1, 1, heads / kv, 1, 1]);
  const target = emit(e, "Mul", [shape, g], `${base}/target`);
  const rep = emit(e, "Expand", [k5, target], `${base}/repeated`);
  // [B, kv, g, Nk, d] → [B, heads, Nk, d], sizes read from K itself.
  const kShape = emit(e, "Shape", [k], `${base}/k_shape`);
  const slice = (from: number, to: number, what: string) =>
    emit(e, "Slice", [
      kShape,
      int64Const(e, `${base}/${what}_from`, [from]),
      int64Const(e, `${base}/${what}_to`, [to]),
    ], `${base}/${what}`);
  const merged = emit(
    e,
    "Concat",
    [slice(0, 1, "b"), int64Const(e, `${base}/heads`, [heads]), slice(2, 4, "nd")],
    `${base}/merged_shape`,
    { axis: 0 },
  );
  return emit(e, "Reshape", [rep, merged], `${base}/bhnd`);
}

/** Adds the masks a fused op applies to float32 scores [B, heads, Nq, Nk]. */
function applyMasks(c: TapCtx, core: AttentionCore, s: string, base: string): string {
  const { e } = c;
  const m = core.masks ?? {};
  for (const [i, a] of (m.additive ?? []).entries()) {
    s = emit(e, "Add", [s, asFloat32(e, a, c.elemType, `${base}/mask${i}`)], `${base}/masked${i}`);
  }
  if (m.keyPadding) {
    const { tensor, rank, filter } = m.keyPadding;
    let keep: string;
    if (rank === 1) {
      // Key lengths [B]: key j is kept when j < length.
      const shape = emit(e, "Shape", [s], `${base}/s_shape`);
      const nk = emit(e, "Gather", [shape, int64Scalar(e, `${base}/three`, 3)], `${base}/nk`);
      const pos = emit(
        e,
        "Range",
        [int64Scalar(e, `${base}/r0`, 0), nk, int64Scalar(e, `${base}/r1`, 1)],
        `${base}/pos`,
      );
      const len = emit(e, "Cast", [tensor], `${base}/len`, { to: DataType.INT64 });
      const col = unsqueeze(e, len, [1], `${base}/len_col`);
      keep = emit(e, "Less", [pos, col], `${base}/keep`);
    } else {
      const mf = emit(e, "Cast", [tensor], `${base}/kpm_f`, { to: DataType.FLOAT });
      keep = emit(e, "Greater", [mf, floatConst(e, `${base}/kpm_zero`, 0)], `${base}/keep`);
    }
    const add = emit(
      e,
      "Where",
      [keep, floatConst(e, `${base}/kpm_pass`, 0), floatConst(e, `${base}/kpm_filter`, filter)],
      `${base}/kpm_add`,
    );
    // [B, Nk] → [B, 1, 1, Nk]; [B, Nq, Nk] → [B, 1, Nq, Nk].
    const add4 = unsqueeze(e, add, rank === 3 ? [1] : [1, 2], `${base}/kpm_4d`);
    s = emit(e, "Add", [s, add4], `${base}/kpm_masked`);
  }
  if (m.boolean) {
    const lowest = floatConst(e, `${base}/lowest`, -3.4028234663852886e38);
    s = emit(e, "Where", [m.boolean, s, lowest], `${base}/bool_masked`);
  }
  return s;
}

function scaledScores(
  c: TapCtx,
  core: AttentionCore,
  q: string,
  k: string,
  base: string,
): string {
  const { e } = c;
  const kt = emit(e, "Transpose", [k], `${base}/kT`, { perm: [0, 1, 3, 2] });
  let s = emit(e, "MatMul", [q, kt], `${base}/scores`);
  if (core.scale !== undefined) {
    s = emit(e, "Mul", [s, floatConst(e, `${base}/scale_c`, core.scale)], `${base}/scaled`);
  } else {
    // 1/√d with d read from the Q tap at run time.
    const shape = emit(e, "Shape", [q], `${base}/q_shape`);
    const d = emit(e, "Gather", [shape, int64Const(e, `${base}/three`, [3])], `${base}/d`);
    const df = emit(e, "Cast", [d], `${base}/d_float`, { to: DataType.FLOAT });
    const root = emit(e, "Sqrt", [df], `${base}/sqrt_d`);
    s = emit(e, "Div", [s, root], `${base}/scaled`);
  }
  return applyMasks(c, core, s, base);
}

/**
 * A new model with extra outputs for each core's Q, K (as float32 [B, heads, N, d]) and, when
 * asked, head-averaged float32 probabilities; `taps[i]` describes the outputs of `cores[i]`.
 * Fused ops' Q and K are rebuilt by added nodes (projection, packed slots, q/k/v bias) and their
 * probabilities apply the op's scale and masks, so they equal what the op computes. Float16 and
 * bfloat16 models are tapped through Casts to float32. The input model is not changed.
 *
 * @example
 * ```ts
 * const cores = findAttention(model);
 * const { model: tapped, taps } = tapAttention(model, cores, { probs: true });
 * // run `tapped`; taps[i].probs names the [B, Nq, Nk] output of core i
 * ```
 */
export function tapAttention(
  model: Model,
  cores: readonly AttentionCore[],
  opts: TapOptions = {},
): { model: Model; taps: TapInfo[] } {
  const wantQk = opts.qk ?? true;
  const wantProbs = opts.probs ?? false;
  const e = beginEdit(model);
  const c: TapCtx = { e, elemType: elemTypes(model.graph) };
  const taps = cores.map((core): TapInfo => {
    const base = `attnkit/tap${core.index}`;
    const tap: TapInfo = {
      core: core.index,
      kind: core.kind,
      form: core.form,
      heads: core.heads,
      scale: core.scaleFactors.length > 0 ? undefined : core.scale,
      sourceLayout: core.layout,
      masks: maskTensors(core),
    };
    const unfused = core.softmax !== undefined;
    let qk: { q: string; k: string } | undefined;
    if (wantQk || (wantProbs && !unfused)) qk = qkOf(c, core, base);
    if (wantQk) {
      tap.q = emit(e, "Identity", [qk!.q], `${base}/q`);
      tap.k = emit(e, "Identity", [qk!.k], `${base}/k`);
      e.outputs.push(floatOutput(tap.q), floatOutput(tap.k));
    }
    if (core.scaleFactors.length > 0) {
      let s = floatConst(e, `${base}/scale_const`, core.scale ?? 1);
      for (const f of core.scaleFactors) {
        const fac = asFloat32(e, f.tensor, c.elemType, `${base}/scale_factor`);
        s = emit(e, f.power === 1 ? "Mul" : "Div", [s, fac], `${base}/scale_part`);
      }
      tap.scaleOutput = emit(e, "Identity", [s], `${base}/scale`);
      e.outputs.push(floatOutput(tap.scaleOutput));
    }
    if (wantProbs) {
      let p: string;
      if (unfused) {
        p = asFloat32(e, core.probsOrOutput, c.elemType, `${base}/p`);
        if (core.layout === "(bh)nd") p = toBhnd(e, p, "(bh)nd", core.heads, `${base}/p`);
      } else {
        let k = qk!.k;
        if (core.kvHeads !== undefined) k = repeatKvHeads(c, core, k, `${base}/k_groups`);
        p = emit(e, "Softmax", [scaledScores(c, core, qk!.q, k, base)], `${base}/p`, {
          axis: -1,
        });
      }
      tap.probs = meanOverHeads(e, p, `${base}/probs`);
      e.outputs.push(floatOutput(tap.probs));
    }
    return tap;
  });
  return { model: finishEdit(e), taps };
}

/** The mask inputs a fused core applies to its scores (empty for unfused cores). */
function maskTensors(core: AttentionCore): string[] {
  const m = core.masks ?? {};
  return [
    ...(m.additive ?? []),
    ...(m.keyPadding ? [m.keyPadding.tensor] : []),
    ...(m.boolean ? [m.boolean] : []),
  ];
}

/**
 * The scale on QKᵀ for a tap: its constant, the value of its scale output, or 1/√d.
 * `scaleValue` is the scale output's value when the tap has one.
 */
export function resolveScale(tap: TapInfo, d: number, scaleValue?: number): number {
  if (tap.scaleOutput !== undefined) {
    if (scaleValue === undefined) {
      throw new AttnkitError("scaleValue", `tap ${tap.core} needs the value of ${tap.scaleOutput}`);
    }
    return scaleValue;
  }
  return tap.scale ?? 1 / Math.sqrt(d);
}
