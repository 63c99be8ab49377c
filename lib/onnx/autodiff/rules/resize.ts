/**
 * The Resize rule: the adjoint of any separable Resize (nearest with every nearest_mode, linear,
 * cubic; any coordinate_transformation_mode except tf_crop_and_resize; up- or down-sampling).
 *
 * Resize acts on each resized axis k as a matrix A_k (S_out × S_in). The backward graph gets
 * A_k by running the *same* Resize node on an identity: a tensor whose axis k and one unresized
 * "column" axis both have length S_in, holding the S_in×S_in identity. Column j of the result is
 * A_k's response to the unit input e_j, so the result is A_k (up to a reshape), with exactly the
 * forward's rounding and coordinate rules. Then dX = g contracted with A_k along each resized
 * axis (MatMul). The matrices are small (S_out × S_in per axis), so this costs little next to the
 * convolutions around an upsampler.
 *
 * @module
 */
import { attrString } from "../attrs.ts";
import type { Emitter } from "../emit.ts";
import { fromFloat32 } from "../../tensor_data.ts";
import type { GradContext, GradRule, RuleTable } from "../rule.ts";
import { needRank, ruleError } from "../rule.ts";
import { hasAttr } from "../attrs.ts";
import { sameDim } from "../facts.ts";

function vec(em: Emitter, parts: (number[] | string)[]): string {
  if (parts.every((p) => Array.isArray(p))) return em.i64((parts as number[][]).flat());
  return em.op("Concat", parts.map((p) => (Array.isArray(p) ? em.i64(p) : p)), { axis: 0 });
}

/** Which axes the node resizes; all but axis 0 when scales/sizes are not known constants. */
function resizedAxes(ctx: GradContext, r: number): number[] {
  const { em, node } = ctx;
  const [x, , scalesName, sizesName] = node.input;
  const xd = em.dims(x);
  const scales = scalesName ? em.numbers(scalesName) : undefined;
  const sizes = sizesName ? em.factsOf(sizesName).value : undefined;
  const all = Array.from({ length: r }, (_, i) => i);
  if (scales && scales.length === r) return all.filter((i) => scales[i] !== 1);
  if (sizes && sizes.length === r) return all.filter((i) => !sameDim(sizes[i], xd?.[i]));
  return all.slice(1);
}

/** A size as a constant piece when known, else the run-time 1-element vector. */
function piece(em: Emitter, v: string): number[] | string {
  const known = em.numbers(v);
  return known !== undefined && known.length === 1 ? known : v;
}

/** A_k as a [S_out, S_in] matrix, computed by resizing an identity laid out on axes c and k. */
function interpolationMatrix(ctx: GradContext, r: number, k: number, c: number): string {
  const { em, node } = ctx;
  const [x, , scalesName] = node.input;
  const sIn = piece(em, em.dimOf(x, k));
  const sOut = piece(em, em.dimOf(node.output[0], k));
  const eye = em.op("EyeLike", [
    em.op("ConstantOfShape", [vec(em, [sIn, sIn])], { value: fromFloat32("", [1], [0]) }),
  ]);
  /** A rank-r shape of ones with `atC` on axis c and `atK` on axis k. */
  const laidOut = (atC: number[] | string, atK: number[] | string): string =>
    vec(em, Array.from({ length: r }, (_, i) => (i === c ? atC : i === k ? atK : [1])));
  const t = em.op("Reshape", [eye, laidOut(sIn, sIn)]);
  let resized: string;
  if (scalesName) {
    const scales = em.numbers(scalesName);
    const mask = Array.from({ length: r }, (_, i) => (i === k ? 1 : 0));
    const s = scales
      ? em.f32(scales.map((v, i) => (i === k ? v : 1)))
      : em.add(em.mul(scalesName, em.f32(mask)), em.f32(mask.map((m) => 1 - m)));
    // The forward node's attributes (mode, coordinate and rounding rules) are kept verbatim.
    resized = em.opWithAttributes("Resize", [t, "", s], node.attribute);
  } else {
    resized = em.opWithAttributes("Resize", [t, "", "", laidOut(sIn, sOut)], node.attribute);
  }
  // Axis c indexes the unit input j, axis k the output i: row-major order gives A or Aᵀ.
  if (c > k) return em.op("Reshape", [resized, vec(em, [sOut, sIn])]);
  const at = em.op("Reshape", [resized, vec(em, [sIn, sOut])]);
  return em.op("Transpose", [at], { perm: [1, 0] });
}

const resize: GradRule = {
  inputs: () => [0],
  grad: (ctx) => {
    const { em, node } = ctx;
    const x = node.input[0];
    const r = needRank(ctx, x);
    const mode = attrString(node, "coordinate_transformation_mode", "half_pixel");
    if (mode === "tf_crop_and_resize") {
      throw ruleError(node, "coordinate_transformation_mode tf_crop_and_resize is not supported");
    }
    if (hasAttr(node, "axes")) {
      throw ruleError(node, "Resize with an axes attribute is not supported");
    }
    const policy = attrString(node, "keep_aspect_ratio_policy", "stretch");
    if (policy !== "stretch") {
      throw ruleError(node, `keep_aspect_ratio_policy ${policy} is not supported`);
    }
    const axes = resizedAxes(ctx, r);
    const all = Array.from({ length: r }, (_, i) => i);
    const c = all.find((i) => !axes.includes(i));
    if (c === undefined) {
      throw ruleError(node, "every axis is resized; one axis must keep its size");
    }
    let g = ctx.dy[0]!;
    for (const k of axes) {
      const a = interpolationMatrix(ctx, r, k, c); // [S_out, S_in]
      if (k === r - 1) g = em.op("MatMul", [g, a]);
      else if (k === r - 2) g = em.op("MatMul", [em.op("Transpose", [a], { perm: [1, 0] }), g]);
      else {
        const perm = all.map((i) => (i === k ? r - 1 : i === r - 1 ? k : i));
        g = em.transpose(em.op("MatMul", [em.op("Transpose", [g], { perm }), a]), perm);
      }
    }
    return [em.note(g, em.dims(x))];
  },
};

/** Resize rule. */
export const resizeRules: RuleTable = { Resize: resize };
