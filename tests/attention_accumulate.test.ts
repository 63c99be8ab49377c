/**
 * accumulateMaps against a naive float64 reference written here from Eq. 1-2: it materialises
 * every head's full softmax map and upsamples by evaluating the nearest-neighbour definition
 * pixel by pixel.
 */
import assert from "node:assert/strict";
import { accumulateMaps } from "../lib/attention/accumulate.ts";
import type { AttentionTap } from "../lib/attention/types.ts";
import { AttnkitError } from "../lib/errors.ts";
import { mulberry32 } from "../lib/random.ts";
import { tensor } from "../lib/tensor.ts";

function randn(rng: () => number, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = scale * (rng() * 2 - 1) * 1.7;
  return out;
}

function tap(
  rng: () => number,
  kind: "self" | "cross",
  size: [number, number],
  heads: number,
  d: number,
  l = 5,
): AttentionTap {
  const nq = size[0] * size[1];
  const nk = kind === "self" ? nq : l;
  return {
    kind,
    size,
    q: tensor([heads, nq, d], randn(rng, heads * nq * d)),
    k: tensor([heads, nk, d], randn(rng, heads * nk * d)),
  };
}

/** Eq. 1-2 by definition, in float64. */
function naive(
  taps: AttentionTap[],
): { self: Float64Array; cross: Float64Array; H: number; W: number; L: number } {
  const H = Math.max(...taps.map((t) => t.size[0]));
  const W = Math.max(...taps.map((t) => t.size[1]));
  const HW = H * W;
  const L = taps.find((t) => t.kind === "cross")?.k.shape[1] ?? 0;
  const self = new Float64Array(HW * HW);
  const cross = new Float64Array(HW * L);
  const selfHeads = taps.filter((t) => t.kind === "self").reduce((s, t) => s + t.q.shape[0], 0);
  const crossHeads = taps.filter((t) => t.kind === "cross").reduce((s, t) => s + t.q.shape[0], 0);
  for (const t of taps) {
    const [heads, nq, d] = t.q.shape;
    const nk = t.k.shape[1];
    const [h, w] = t.size;
    const fy = H / h;
    const fx = W / w;
    const src = (P: number) => Math.floor(Math.floor(P / W) / fy) * w + Math.floor((P % W) / fx);
    for (let hd = 0; hd < heads; hd++) {
      const A: number[][] = [];
      for (let i = 0; i < nq; i++) {
        const logits: number[] = [];
        for (let j = 0; j < nk; j++) {
          let s = 0;
          for (let c = 0; c < d; c++) {
            s += t.q.data[(hd * nq + i) * d + c] * t.k.data[(hd * nk + j) * d + c];
          }
          logits.push(s / Math.sqrt(d));
        }
        const m = Math.max(...logits);
        const e = logits.map((v) => Math.exp(v - m));
        const z = e.reduce((a, b) => a + b, 0);
        A.push(e.map((v) => v / z));
      }
      for (let P = 0; P < HW; P++) {
        if (t.kind === "self") {
          for (let Q = 0; Q < HW; Q++) {
            self[P * HW + Q] += A[src(P)][src(Q)] / (fy * fx) / selfHeads;
          }
        } else {
          for (let j = 0; j < L; j++) cross[P * L + j] += A[src(P)][j] / crossHeads;
        }
      }
    }
  }
  return { self, cross, H, W, L };
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

Deno.test("accumulateMaps matches the naive per-head reference", async (t) => {
  const cases: Array<[string, (rng: () => number) => AttentionTap[]]> = [
    ["4x4 + 2x2, 2 heads, d=3, L=5", (r) => [
      tap(r, "self", [4, 4], 2, 3),
      tap(r, "cross", [4, 4], 2, 3),
      tap(r, "self", [2, 2], 2, 3),
      tap(r, "cross", [2, 2], 2, 3),
    ]],
    ["non-square and unequal factors, odd row counts", (r) => [
      tap(r, "self", [3, 5], 3, 5, 7),
      tap(r, "self", [6, 10], 1, 4, 7),
      tap(r, "cross", [3, 5], 2, 6, 7),
      tap(r, "cross", [6, 5], 1, 2, 7),
      tap(r, "self", [1, 1], 2, 3, 7),
    ]],
    [
      "a single layer at full size",
      (r) => [tap(r, "self", [5, 3], 4, 7), tap(r, "cross", [5, 3], 4, 9, 6)],
    ],
  ];
  for (const [name, make] of cases) {
    await t.step(name, () => {
      const taps = make(mulberry32(11));
      const got = accumulateMaps(taps);
      const want = naive(taps);
      assert.deepEqual(got.size, [want.H, want.W]);
      assert.deepEqual(got.self.shape, [want.H * want.W, want.H * want.W]);
      assert.deepEqual(got.cross.shape, [want.H * want.W, want.L]);
      // float32 output of sums of a few probabilities: 1e-6 is ~10 ulp at values near 1.
      assert.ok(
        maxDiff(got.self.data, want.self) < 1e-6,
        `self diff ${maxDiff(got.self.data, want.self)}`,
      );
      assert.ok(
        maxDiff(got.cross.data, want.cross) < 1e-6,
        `cross diff ${maxDiff(got.cross.data, want.cross)}`,
      );
      // Every row of both maps is a distribution (the /δ² on self columns keeps this).
      const hw = want.H * want.W;
      for (let i = 0; i < hw; i++) {
        let s = 0;
        for (let j = 0; j < hw; j++) s += got.self.data[i * hw + j];
        assert.ok(Math.abs(s - 1) < 1e-5, `self row ${i} sums to ${s}`);
        let c = 0;
        for (let j = 0; j < want.L; j++) c += got.cross.data[i * want.L + j];
        assert.ok(Math.abs(c - 1) < 1e-5, `cross row ${i} sums to ${c}`);
      }
    });
  }
});

Deno.test("accumulateMaps: a kind without taps gives an [HW, 0] map", () => {
  const m = accumulateMaps([tap(mulberry32(1), "cross", [2, 2], 1, 2, 3)]);
  assert.deepEqual(m.self.shape, [4, 0]);
  assert.deepEqual(m.cross.shape, [4, 3]);
});

Deno.test("accumulateMaps rejects bad taps with an AttnkitError naming the tap", async (t) => {
  const r = mulberry32(3);
  const good = () => tap(r, "self", [4, 4], 2, 3);
  const expectErr = (taps: AttentionTap[], argument: string, text?: RegExp) => {
    assert.throws(() => accumulateMaps(taps), (e: unknown) => {
      assert.ok(e instanceof AttnkitError, String(e));
      assert.equal(e.argument, argument);
      if (text) assert.match(e.message, text);
      return true;
    });
  };
  await t.step("empty list", () => expectErr([], "taps"));
  await t.step("q rows do not match the size", () => {
    const bad = { ...good(), size: [4, 3] as [number, number] };
    expectErr([bad], "taps[0].q", /12 \(= 4x3\)/);
  });
  await t.step("k heads differ from q", () => {
    const g = good();
    expectErr([good(), { ...g, k: tensor([1, 16, 3]) }], "taps[1].k", /\[2, 16 \(= 4x4\), 3\]/);
  });
  await t.step("cross taps disagree on L", () => {
    expectErr(
      [tap(r, "cross", [4, 4], 2, 3, 5), tap(r, "cross", [2, 2], 2, 3, 6)],
      "taps[1].k",
      /\[2, 5 \(L\), 3\]/,
    );
  });
  await t.step("size does not divide the largest size", () => {
    expectErr([good(), tap(r, "self", [3, 3], 1, 3)], "taps[1].size", /\[4, 4\]/);
  });
  await t.step("NaN in q", () => {
    const g = good();
    g.q.data[5] = NaN;
    expectErr([g], "taps[0].q", /NaN/);
  });
  await t.step("Inf in k", () => {
    const g = tap(r, "cross", [2, 2], 1, 2);
    g.k.data[1] = Infinity;
    expectErr([good(), g], "taps[1].k", /Infinity/);
  });
  await t.step("unknown kind", () => {
    expectErr([{ ...good(), kind: "both" as "self" }], "taps[0].kind");
  });
});
