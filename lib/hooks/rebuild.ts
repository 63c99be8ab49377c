/**
 * What a fused attention op computes, rebuilt from primitive ONNX ops: Q, K and V as float32
 * [B, heads, N, d] (projection from stacked QKV weights, packed QKV/KV slots, q/k/v bias, grouped
 * key heads) and the scaled, masked scores. The taps use it to apply exactly what the op applies;
 * `lower.ts` uses it to replace the op for reverse-mode autodiff. Semantics: onnxruntime's
 * contrib ops (MultiHeadAttention, Attention) and ONNX opset-23 Attention.
 *
 * @module
 */
import { AttnkitError } from "../errors.ts";
import { DataType } from "../onnx/types.ts";
import {
  asFloat32,
  emit,
  floatConst,
  type GraphEdit,
  int64Const,
  int64Scalar,
  toBhnd,
  unsqueeze,
} from "./edit.ts";
import type { AttentionCore } from "./find.ts";

/** The edit being built and the element types of the model it edits. */
export interface RebuildCtx {
  e: GraphEdit;
  elemType: (t: string) => number | undefined;
}

/** `bias[from:to]` along axis 0, with `from`/`to` given as 1-D int64 tensors. */
export function sliceVector(
  c: RebuildCtx,
  t: string,
  from: string,
  to: string,
  base: string,
): string {
  return emit(c.e, "Slice", [t, from, to, int64Const(c.e, `${base}/axis0`, [0])], base);
}

/** The hidden size (last axis) of a [B, N, C] tensor as a 1-D int64 tensor of one element. */
export function lastDim(c: RebuildCtx, t: string, base: string): string {
  const shape = emit(c.e, "Shape", [t], `${base}/shape`);
  return emit(
    c.e,
    "Slice",
    [shape, int64Const(c.e, `${base}/m1`, [-1]), int64Const(c.e, `${base}/end`, [2 ** 62])],
    `${base}/c`,
  );
}

/** Slot `index` of a packed MHA input [B, N, heads, slots, d] as [B, N, heads, d] float32. */
export function packedSlot(c: RebuildCtx, t: string, index: number, base: string): string {
  const g = emit(c.e, "Gather", [t, int64Scalar(c.e, `${base}/slot`, index)], `${base}/slot`, {
    axis: 3,
  });
  return asFloat32(c.e, g, c.elemType, base);
}

/** Slot `index` of a q/k/v bias of equal sizes, as [heads, d] (broadcasts over [B, N, heads, d]). */
export function biasSlot(c: RebuildCtx, core: AttentionCore, index: number, base: string): string {
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
export function qkOf(c: RebuildCtx, core: AttentionCore, base: string): { q: string; k: string } {
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
export function repeatKvHeads(c: RebuildCtx, core: AttentionCore, k: string, base: string): string {
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
export function applyMasks(c: RebuildCtx, core: AttentionCore, s: string, base: string): string {
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

export function scaledScores(
  c: RebuildCtx,
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
 * V of a fused core as float32 [B, kvHeads (or heads), Nk, dv], rebuilt like {@link qkOf}: the
 * projection's third column block, the packed input's value slot, or the value input, plus the
 * q/k/v bias's third part.
 */
export function vOf(c: RebuildCtx, core: AttentionCore, base: string): string {
  const { e } = c;
  const f = core.fusedQk ?? {};
  const heads = core.kvHeads ?? core.heads;
  if (f.projection) {
    const [cq, ck, cv] = f.projection.sizes;
    const x = asFloat32(e, core.q, c.elemType, `${base}/x`);
    const w = asFloat32(e, f.projection.weight, c.elemType, `${base}/w`);
    const lo = int64Const(e, `${base}/v_from`, [cq + ck]);
    const hi = int64Const(e, `${base}/v_to`, [cq + ck + cv]);
    const ws = emit(e, "Slice", [w, lo, hi, int64Const(e, `${base}/v_axis`, [1])], `${base}/wv`);
    let y = emit(e, "MatMul", [x, ws], `${base}/v_proj`);
    if (f.bias) {
      const bias = asFloat32(e, f.bias, c.elemType, `${base}/qkv_bias`);
      y = emit(e, "Add", [y, sliceVector(c, bias, lo, hi, `${base}/bv`)], `${base}/v_biased`);
    }
    return toBhnd(e, y, "bnc", heads, `${base}/v`);
  }
  if (f.packed) {
    let v = packedSlot(
      c,
      f.packed === "qkv" ? core.q : core.k,
      f.packed === "qkv" ? 2 : 1,
      `${base}/v`,
    );
    if (f.bias) v = emit(e, "Add", [v, biasSlot(c, core, 2, `${base}/v`)], `${base}/v_biased`);
    return toBhnd(e, v, "bsnh", heads, `${base}/v`);
  }
  let v = asFloat32(e, core.v, c.elemType, `${base}/v`);
  if (f.bias && core.kLayout === "bnc") {
    // MultiHeadAttention bias = [q | k | v]: v's part starts at 2·Cq and is Cv long.
    const bias = asFloat32(e, f.bias, c.elemType, `${base}/qkv_bias`);
    const cq = lastDim(c, asFloat32(e, core.q, c.elemType, `${base}/q`), `${base}/cq`);
    const from = emit(e, "Add", [cq, cq], `${base}/c2`);
    const to = emit(e, "Add", [from, lastDim(c, v, `${base}/cv`)], `${base}/c2v`);
    v = emit(e, "Add", [v, sliceVector(c, bias, from, to, `${base}/bv`)], `${base}/v_biased`);
  }
  return toBhnd(e, v, core.kLayout, heads, `${base}/v`);
}
