/**
 * Taps attention cores: returns a new model whose graph also outputs, per core, Q and K in
 * [B, heads, N, d] layout (the reshapes are added to the graph, so the runtime needs no layout
 * logic), optionally the head-averaged probabilities [B, Nq, Nk], and the scale when the model
 * computes it at run time.
 *
 * @module
 */
import { AttnkitError } from "../errors.ts";
import { DataType, type Model, type ValueInfoProto } from "../onnx/types.ts";
import {
  beginEdit,
  emit,
  finishEdit,
  floatConst,
  type GraphEdit,
  int64Const,
  meanOverHeads,
  toBhnd,
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

/** The bias/mask input of a fused node that is added to the scores, if any. */
export function fusedBiasInput(core: AttentionCore): string | undefined {
  const n = core.fused;
  if (!n) return undefined;
  const idx = core.form === "MultiHeadAttention" ? 5 : 3;
  const b = n.input[idx];
  return b ? b : undefined;
}

function scaledScores(
  e: GraphEdit,
  core: AttentionCore,
  q: string,
  k: string,
  base: string,
): string {
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
  const bias = fusedBiasInput(core);
  if (bias !== undefined) s = emit(e, "Add", [s, bias], `${base}/biased`);
  return s;
}

/**
 * A new model with extra outputs for each core's Q, K (as [B, heads, N, d]) and, when asked,
 * head-averaged probabilities; `taps[i]` describes the outputs of `cores[i]`. The input model
 * is not changed.
 */
export function tapAttention(
  model: Model,
  cores: readonly AttentionCore[],
  opts: TapOptions = {},
): { model: Model; taps: TapInfo[] } {
  const wantQk = opts.qk ?? true;
  const wantProbs = opts.probs ?? false;
  const e = beginEdit(model);
  const taps = cores.map((core): TapInfo => {
    const base = `attnkit/tap${core.index}`;
    const tap: TapInfo = {
      core: core.index,
      kind: core.kind,
      form: core.form,
      heads: core.heads,
      scale: core.scaleFactors.length > 0 ? undefined : core.scale,
      sourceLayout: core.layout,
    };
    let qb: string | undefined;
    let kb: string | undefined;
    const needQk = wantQk || (wantProbs && core.form !== "matmul");
    if (needQk) {
      qb = toBhnd(e, core.q, core.layout, core.heads, `${base}/q`);
      let k = core.k;
      if (core.kTransposed) {
        const perm = core.layout === "bhnd" ? [0, 1, 3, 2] : [0, 2, 1];
        k = emit(e, "Transpose", [k], `${base}/k_untransposed`, { perm });
      }
      kb = toBhnd(e, k, core.kLayout, core.kvHeads ?? core.heads, `${base}/k`);
    }
    if (wantQk) {
      tap.q = emit(e, "Identity", [qb!], `${base}/q`);
      tap.k = emit(e, "Identity", [kb!], `${base}/k`);
      e.outputs.push(floatOutput(tap.q), floatOutput(tap.k));
    }
    if (core.scaleFactors.length > 0) {
      let s = floatConst(e, `${base}/scale_const`, core.scale ?? 1);
      for (const f of core.scaleFactors) {
        s = emit(e, f.power === 1 ? "Mul" : "Div", [s, f.tensor], `${base}/scale_part`);
      }
      tap.scaleOutput = emit(e, "Identity", [s], `${base}/scale`);
      e.outputs.push(floatOutput(tap.scaleOutput));
    }
    if (wantProbs) {
      let p: string;
      if (core.form === "matmul") {
        p = core.probsOrOutput;
        if (core.layout === "(bh)nd") p = toBhnd(e, p, "(bh)nd", core.heads, `${base}/p`);
      } else {
        if (core.kvHeads !== undefined) {
          throw new AttnkitError(
            "probs",
            `core ${core.index} uses grouped-query attention (${core.heads} query heads, ` +
              `${core.kvHeads} key heads); head-averaged probabilities are not built for it`,
          );
        }
        p = emit(e, "Softmax", [scaledScores(e, core, qb!, kb!, base)], `${base}/p`, {
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
