/**
 * Rules for matrix products: MatMul (numpy semantics — batched, broadcast, 1-D operands) and
 * Gemm (transA/transB/alpha/beta, broadcast C).
 *
 * MatMul: dA = g·Bᵀ, dB = Aᵀ·g over the last two axes, then summed over the batch axes the
 * operand was broadcast along. A 1-D operand is lifted to a matrix first (as numpy does) and its
 * gradient squeezed back.
 *
 * @module
 */
import { attrFloat, attrInt } from "../attrs.ts";
import type { DimV } from "../facts.ts";
import type { GradRule, RuleTable } from "../rule.ts";
import { needRank } from "../rule.ts";

function swapLast(rank: number): number[] {
  const p = Array.from({ length: rank }, (_, i) => i);
  [p[rank - 2], p[rank - 1]] = [p[rank - 1], p[rank - 2]];
  return p;
}

const matmul: GradRule = {
  grad: (ctx) => {
    const { em, node } = ctx;
    const [a, b] = node.input;
    const ra = needRank(ctx, a);
    const rb = needRank(ctx, b);
    const ad = em.dims(a);
    const bd = em.dims(b);
    const yd = em.dims(node.output[0]);
    // Lift 1-D operands (and the cotangent with them) to matrices.
    const a2 = ra === 1 ? em.unsqueeze(a, [0], ad && [1, ad[0]]) : a;
    const b2 = rb === 1 ? em.unsqueeze(b, [1], bd && [bd[0], 1]) : b;
    let g = ctx.dy[0]!;
    let gd: DimV[] | undefined = yd;
    if (rb === 1) {
      g = em.unsqueeze(g, [-1]);
      gd = gd && [...gd, 1];
    }
    if (ra === 1) {
      g = em.unsqueeze(g, [-2]);
      gd = gd && [...gd.slice(0, -1), 1, gd[gd.length - 1]];
    }
    const a2d = em.dims(a2)!;
    const b2d = em.dims(b2)!;
    const batch = gd?.slice(0, -2);
    const out: (string | undefined)[] = [undefined, undefined];
    if (ctx.wants[0]) {
      const bt = em.transpose(b2, swapLast(b2d.length));
      let da = em.op("MatMul", [g, bt]);
      let dad: DimV[] | undefined = batch && [...batch, a2d.at(-2), a2d.at(-1)];
      if (ra === 1) {
        da = em.squeeze(da, [-2]);
        dad = dad && [...dad.slice(0, -2), dad[dad.length - 1]];
      }
      out[0] = em.sumTo(da, dad, a);
    }
    if (ctx.wants[1]) {
      const at = em.transpose(a2, swapLast(a2d.length));
      let db = em.op("MatMul", [at, g]);
      let dbd: DimV[] | undefined = batch && [...batch, b2d.at(-2), b2d.at(-1)];
      if (rb === 1) {
        db = em.squeeze(db, [-1]);
        dbd = dbd && dbd.slice(0, -1);
      }
      out[1] = em.sumTo(db, dbd, b);
    }
    return out;
  },
};

/** Y = α·op(A)·op(B) + β·C with op = transpose when transA/transB is set. */
const gemm: GradRule = {
  grad: (ctx) => {
    const { em, node } = ctx;
    const [a, b, c] = node.input;
    const tA = attrInt(node, "transA", 0);
    const tB = attrInt(node, "transB", 0);
    const alpha = attrFloat(node, "alpha", 1);
    const beta = attrFloat(node, "beta", 1);
    const g = ctx.dy[0]!;
    const yd = em.dims(node.output[0]);
    const out: (string | undefined)[] = [undefined, undefined, undefined];
    const gemmOf = (x: string, y: string, ta: number, tb: number): string =>
      em.op("Gemm", [x, y], { alpha: { float: alpha }, transA: ta, transB: tb });
    if (ctx.wants[0]) {
      // dA = α g op(B)ᵀ, transposed back when A was transposed.
      out[0] = tA === 0 ? gemmOf(g, b, 0, tB === 1 ? 0 : 1) : gemmOf(b, g, tB, 1);
    }
    if (ctx.wants[1]) {
      // dB = α op(A)ᵀ g, transposed back when B was transposed.
      out[1] = tB === 0 ? gemmOf(a, g, tA === 1 ? 0 : 1, 0) : gemmOf(g, a, 1, tA);
    }
    if (ctx.wants[2] && c) {
      const scaled = beta === 1 ? g : em.mul(g, em.f32(beta), yd);
      out[2] = em.sumTo(scaled, yd, c);
    }
    return out;
  },
};

/** Matrix-product rules. */
export const matmulRules: RuleTable = { MatMul: matmul, Gemm: gemm };
