/**
 * accumulateMapsBackward against central finite differences of J(q, k) = Σ Gs ⊙ self + Σ Gc ⊙ cross,
 * where the maps come from a float64 Eq. 1-2 written here (so float32 rounding does not swamp the
 * differences), plus one check of that reference against accumulateMaps itself.
 */
import assert from "node:assert/strict";
import { accumulateMaps } from "../lib/attention/accumulate.ts";
import { accumulateMapsBackward } from "../lib/attention/accumulate_backward.ts";
import type { AttentionTap } from "../lib/attention/types.ts";
import { AttnkitError } from "../lib/errors.ts";
import { mulberry32 } from "../lib/random.ts";
import { tensor } from "../lib/tensor.ts";

interface Tap64 {
  kind: "self" | "cross";
  size: [number, number];
  heads: number;
  d: number;
  nk: number;
  q: Float64Array;
  k: Float64Array;
}

function uniform(rng: () => number, n: number, s: number): Float64Array {
  const out = new Float64Array(n);
  // Values are float32-representable so the float32 taps hold exactly the same numbers.
  for (let i = 0; i < n; i++) out[i] = Math.fround(s * (2 * rng() - 1));
  return out;
}

function make(
  rng: () => number,
  kind: "self" | "cross",
  size: [number, number],
  heads: number,
  d: number,
  l: number,
): Tap64 {
  const nq = size[0] * size[1];
  const nk = kind === "self" ? nq : l;
  return {
    kind,
    size,
    heads,
    d,
    nk,
    q: uniform(rng, heads * nq * d, 1.5),
    k: uniform(rng, heads * nk * d, 1.5),
  };
}

function toTap(t: Tap64): AttentionTap {
  const nq = t.size[0] * t.size[1];
  return {
    kind: t.kind,
    size: t.size,
    q: tensor([t.heads, nq, t.d], Float32Array.from(t.q)),
    k: tensor([t.heads, t.nk, t.d], Float32Array.from(t.k)),
  };
}

/** Eq. 1-2 in float64: maps as flat arrays at [H, W]. */
function maps64(
  taps: Tap64[],
  H: number,
  W: number,
  L: number,
): { self: Float64Array; cross: Float64Array } {
  const HW = H * W;
  const self = new Float64Array(HW * HW);
  const cross = new Float64Array(HW * L);
  const nSelf = taps.filter((t) => t.kind === "self").reduce((s, t) => s + t.heads, 0);
  const nCross = taps.filter((t) => t.kind === "cross").reduce((s, t) => s + t.heads, 0);
  for (const t of taps) {
    const [h, w] = t.size;
    const nq = h * w;
    const fy = H / h;
    const fx = W / w;
    for (let hd = 0; hd < t.heads; hd++) {
      const A = new Float64Array(nq * t.nk);
      for (let i = 0; i < nq; i++) {
        let m = -Infinity;
        for (let j = 0; j < t.nk; j++) {
          let s = 0;
          for (let c = 0; c < t.d; c++) {
            s += t.q[(hd * nq + i) * t.d + c] * t.k[(hd * t.nk + j) * t.d + c];
          }
          A[i * t.nk + j] = s / Math.sqrt(t.d);
          m = Math.max(m, A[i * t.nk + j]);
        }
        let z = 0;
        for (let j = 0; j < t.nk; j++) z += A[i * t.nk + j] = Math.exp(A[i * t.nk + j] - m);
        for (let j = 0; j < t.nk; j++) A[i * t.nk + j] /= z;
      }
      for (let Y = 0; Y < H; Y++) {
        for (let X = 0; X < W; X++) {
          const P = Y * W + X;
          const p = Math.floor(Y / fy) * w + Math.floor(X / fx);
          if (t.kind === "cross") {
            for (let j = 0; j < L; j++) cross[P * L + j] += A[p * t.nk + j] / nCross;
            continue;
          }
          for (let Y2 = 0; Y2 < H; Y2++) {
            for (let X2 = 0; X2 < W; X2++) {
              const q = Math.floor(Y2 / fy) * w + Math.floor(X2 / fx);
              self[P * HW + Y2 * W + X2] += A[p * nq + q] / (fy * fx * nSelf);
            }
          }
        }
      }
    }
  }
  return { self, cross };
}

Deno.test("accumulateMapsBackward matches central finite differences (4x4 + 2x2, 2 heads, d=3, L=5)", () => {
  const rng = mulberry32(7);
  const H = 4;
  const W = 4;
  const L = 5;
  const taps = [
    make(rng, "self", [4, 4], 2, 3, L),
    make(rng, "cross", [4, 4], 2, 3, L),
    make(rng, "self", [2, 2], 2, 3, L),
    make(rng, "cross", [2, 2], 2, 3, L),
  ];
  const gs = uniform(rng, H * W * H * W, 1);
  const gc = uniform(rng, H * W * L, 1);
  const J = () => {
    const m = maps64(taps, H, W, L);
    let s = 0;
    for (let i = 0; i < gs.length; i++) s += gs[i] * m.self[i];
    for (let i = 0; i < gc.length; i++) s += gc[i] * m.cross[i];
    return s;
  };
  // The float64 reference is the same function accumulateMaps computes.
  const f32 = accumulateMaps(taps.map(toTap));
  const ref = maps64(taps, H, W, L);
  for (let i = 0; i < ref.self.length; i++) {
    assert.ok(Math.abs(ref.self[i] - f32.self.data[i]) < 1e-6);
  }
  for (let i = 0; i < ref.cross.length; i++) {
    assert.ok(Math.abs(ref.cross[i] - f32.cross.data[i]) < 1e-6);
  }

  const grads = accumulateMapsBackward(taps.map(toTap), {
    self: tensor([H * W, H * W], Float32Array.from(gs)),
    cross: tensor([H * W, L], Float32Array.from(gc)),
  });
  // In float64, h = 1e-5 leaves a truncation error ~h² · |J'''| ≈ 1e-10 and a rounding error
  // ~1e-16 · |J| / h ≈ 1e-11, far below the 1e-6 tolerance; the analytic side is float32, whose
  // relative error (~1e-7 over sums of ≤ 16 terms) sets the tolerance.
  const h = 1e-5;
  let checked = 0;
  let worst = 0;
  let largest = 0;
  taps.forEach((t, ti) => {
    for (
      const [name, arr, got] of [["q", t.q, grads[ti].dq.data], [
        "k",
        t.k,
        grads[ti].dk.data,
      ]] as const
    ) {
      assert.equal(got.length, arr.length);
      for (let i = 0; i < arr.length; i++) {
        const v = arr[i];
        arr[i] = v + h;
        const up = J();
        arr[i] = v - h;
        const down = J();
        arr[i] = v;
        const fd = (up - down) / (2 * h);
        const err = Math.abs(fd - got[i]);
        worst = Math.max(worst, err / (1e-6 + 1e-4 * Math.abs(fd)));
        largest = Math.max(largest, Math.abs(fd));
        assert.ok(
          err < 1e-6 + 1e-4 * Math.abs(fd),
          `taps[${ti}].${name}[${i}]: fd ${fd}, analytic ${got[i]}`,
        );
        checked++;
      }
    }
  });
  // q and k entries: self 4x4 (96 + 96), cross 4x4 (96 + 30), self 2x2 (24 + 24), cross 2x2 (24 + 30).
  assert.equal(checked, 96 + 96 + 96 + 30 + 24 + 24 + 24 + 30);
  assert.ok(largest > 1e-2, `gradients should not all vanish (largest ${largest})`);
  assert.ok(worst < 1);
});

Deno.test("accumulateMapsBackward: missing map gradients count as zero; a self-only gradient leaves cross taps at 0", () => {
  const rng = mulberry32(9);
  const taps = [make(rng, "self", [2, 2], 1, 2, 3), make(rng, "cross", [2, 2], 1, 2, 3)].map(toTap);
  const g = accumulateMapsBackward(taps, {
    self: tensor([4, 4], Float32Array.from(uniform(rng, 16, 1))),
  });
  assert.ok(g[0].dq.data.some((v) => v !== 0));
  assert.ok(g[1].dq.data.every((v) => v === 0) && g[1].dk.data.every((v) => v === 0));
  const none = accumulateMapsBackward(taps, {});
  assert.ok(none.every((t) => t.dq.data.every((v) => v === 0) && t.dk.data.every((v) => v === 0)));
});

Deno.test("accumulateMapsBackward: a row-constant self gradient has zero effect (rows are distributions)", () => {
  // Σ_j a_ij · c_i is constant in q and k, so its gradient must vanish: a check independent of FD.
  const rng = mulberry32(5);
  const taps = [make(rng, "self", [4, 4], 2, 3, 5), make(rng, "self", [2, 2], 2, 3, 5)].map(toTap);
  const gs = new Float32Array(256);
  for (let i = 0; i < 16; i++) gs.fill(i - 3, i * 16, i * 16 + 16);
  const g = accumulateMapsBackward(taps, { self: tensor([16, 16], gs) });
  for (const t of g) {
    for (const v of [...t.dq.data, ...t.dk.data]) assert.ok(Math.abs(v) < 1e-5, `${v}`);
  }
});

Deno.test("accumulateMapsBackward rejects gradients of the wrong shape", () => {
  const rng = mulberry32(2);
  const taps = [make(rng, "self", [2, 2], 1, 2, 3), make(rng, "cross", [2, 2], 1, 2, 3)].map(toTap);
  for (
    const [grad, arg] of [[{ self: tensor([4, 3]) }, "grad.self"], [
      { cross: tensor([4, 4]) },
      "grad.cross",
    ]] as const
  ) {
    assert.throws(
      () => accumulateMapsBackward(taps, grad),
      (e: unknown) => e instanceof AttnkitError && e.argument === arg,
    );
  }
  const nan = tensor([4, 3]);
  nan.data[2] = NaN;
  assert.throws(
    () => accumulateMapsBackward(taps, { cross: nan }),
    (e: unknown) => e instanceof AttnkitError && e.argument === "grad.cross",
  );
});
