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
  meanOverHeads,
  toBhnd,
} from "./edit.ts";
import type { AttentionCore, AttentionForm, AttentionLayout } from "./find.ts";
import { qkOf, type RebuildCtx, repeatKvHeads, scaledScores } from "./rebuild.ts";

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

/**
 * A new model with extra outputs for each core's Q, K (as float32 [B, heads, N, d]) and, when
 * asked, head-averaged float32 probabilities; `taps[i]` describes the outputs of `cores[i]`.
 * Fused ops' Q and K are rebuilt by added nodes (projection, packed slots, q/k/v bias) and their
 * probabilities apply the op's scale and masks, so they equal what the op computes. Float16 and
 * bfloat16 models are tapped through Casts to float32. The input model is not changed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { findAttention, tapAttention } from "@attnkit/attnkit";
 * import { model, node, valueInfo } from "../onnx/build.ts";
 * // One opset-23 Attention over q, k, v of shape [B=1, heads=2, N=4, d=8].
 * const m = model({
 *   opset: 23,
 *   inputs: ["q", "k", "v"].map((name) => valueInfo(name, [1, 2, 4, 8])),
 *   outputs: [valueInfo("y", [1, 2, 4, 8])],
 *   nodes: [node("Attention", ["q", "k", "v"], ["y"])],
 * });
 * const cores = findAttention(m);
 * const { model: tapped, taps } = tapAttention(m, cores, { probs: true });
 * // run `tapped`; taps[i].probs names the [B, Nq, Nk] output of core i
 * assert(tapped.graph.output.some((o) => o.name === taps[0].probs));
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
  const c: RebuildCtx = { e, elemType: elemTypes(model.graph) };
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
