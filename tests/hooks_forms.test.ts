/**
 * Attention hooks on hand-built graphs in each supported form: (a) MatMul/Mul/Softmax/MatMul in
 * the [B·heads, N, d] layout, (b) the torch-2 SDPA export ([B, heads, N, d], Mul(Sqrt(scale)) on
 * Q and on Kᵀ), (c) com.microsoft MultiHeadAttention, (d) opset-23 Attention. Each model has a
 * self-attention core on `sample` and a cross-attention core on `encoder_hidden_states`.
 * References are computed here in TypeScript from the inputs and weights.
 */
import assert from "node:assert/strict";
import { initializer, model, node, valueInfo } from "../lib/onnx/build.ts";
import { encodeModel } from "../lib/onnx/proto.ts";
import { createSession, ort, type OrtTensor } from "../lib/onnx/ort.ts";
import type { Model, NodeProto, TensorProto } from "../lib/onnx/types.ts";
import { findAttention } from "../lib/hooks/find.ts";
import { resolveScale, tapAttention } from "../lib/hooks/tap.ts";
import { biasAttention } from "../lib/hooks/bias.ts";

const B = 3, N = 4, L = 3, C = 8, CT = 6, H = 2, D = 4;
const SCALE = 1 / Math.sqrt(D);
type Form = "bmm" | "sdpa" | "mha" | "attention23";

function seeded(seed: number): (n: number) => Float32Array {
  let s = seed;
  return (n) =>
    Float32Array.from({ length: n }, () => {
      s = (s * 1103515245 + 12345) % 2147483648;
      return (s / 2147483648) * 2 - 1;
    });
}
const rnd = seeded(7);
const W = {
  q1: rnd(C * C),
  k1: rnd(C * C),
  v1: rnd(C * C),
  q2: rnd(C * C),
  k2: rnd(CT * C),
  v2: rnd(CT * C),
};
const sample = rnd(B * N * C);
const ehs = rnd(B * L * CT);

function coreNodes(form: Form, p: string, q: string, k: string, v: string, out: string) {
  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [];
  const i64 = (name: string, vals: number[]) => {
    inits.push(initializer(`${p}${name}`, [vals.length], BigInt64Array.from(vals, BigInt)));
    return `${p}${name}`;
  };
  const split4 = (t: string) => {
    nodes.push(node("Reshape", [t, i64(`${t}_s4`, [0, 0, H, D])], [`${p}${t}_r4`]));
    nodes.push(node("Transpose", [`${p}${t}_r4`], [`${p}${t}_4`], { perm: [0, 2, 1, 3] }));
    return `${p}${t}_4`;
  };
  const merge4 = (t: string) => {
    nodes.push(node("Transpose", [t], [`${p}o_t`], { perm: [0, 2, 1, 3] }));
    nodes.push(node("Reshape", [`${p}o_t`, i64("o_s", [0, 0, C])], [out]));
  };
  if (form === "bmm") {
    const split3 = (t: string) => {
      const t4 = split4(t);
      nodes.push(node("Reshape", [t4, i64(`${t}_s3`, [B * H, -1, D])], [`${p}${t}_3`]));
      return `${p}${t}_3`;
    };
    const [q3, k3, v3] = [split3(q), split3(k), split3(v)];
    inits.push(initializer(`${p}scale`, [], [SCALE]));
    nodes.push(
      node("Transpose", [k3], [`${p}kT`], { perm: [0, 2, 1] }),
      node("MatMul", [q3, `${p}kT`], [`${p}s`]),
      node("Mul", [`${p}s`, `${p}scale`], [`${p}ss`]),
      node("Softmax", [`${p}ss`], [`${p}p`], { axis: -1 }),
      node("MatMul", [`${p}p`, v3], [`${p}o3`]),
      node("Reshape", [`${p}o3`, i64("o_s4", [B, H, -1, D])], [`${p}o4`]),
    );
    merge4(`${p}o4`);
  } else if (form === "sdpa") {
    const [q4, k4, v4] = [split4(q), split4(k), split4(v)];
    inits.push(initializer(`${p}scale`, [], [SCALE]));
    nodes.push(
      node("Sqrt", [`${p}scale`], [`${p}root`]),
      node("Transpose", [k4], [`${p}kT`], { perm: [0, 1, 3, 2] }),
      node("Mul", [q4, `${p}root`], [`${p}qs`]),
      node("Mul", [`${p}kT`, `${p}root`], [`${p}ks`]),
      node("MatMul", [`${p}qs`, `${p}ks`], [`${p}s`]),
      node("Softmax", [`${p}s`], [`${p}p`], { axis: -1 }),
      node("MatMul", [`${p}p`, v4], [`${p}o4`]),
    );
    merge4(`${p}o4`);
  } else if (form === "mha") {
    nodes.push(node("MultiHeadAttention", [q, k, v], [out], { num_heads: H }, {
      domain: "com.microsoft",
    }));
  } else {
    nodes.push(node("Attention", [q, k, v], [out], { q_num_heads: H, kv_num_heads: H }));
  }
  return { nodes, inits };
}

function buildModel(form: Form): Model {
  const a1 = coreNodes(form, "a1/", "q1", "k1", "v1", "o1");
  const a2 = coreNodes(form, "a2/", "q2", "k2", "v2", "o2");
  return model({
    opset: form === "attention23" ? 23 : 17,
    inputs: [valueInfo("sample", [B, N, C]), valueInfo("encoder_hidden_states", [B, "seq", CT])],
    outputs: [valueInfo("out", [B, N, C])],
    nodes: [
      node("MatMul", ["sample", "Wq1"], ["q1"]),
      node("MatMul", ["sample", "Wk1"], ["k1"]),
      node("MatMul", ["sample", "Wv1"], ["v1"]),
      ...a1.nodes,
      node("Add", ["sample", "o1"], ["x1"]),
      node("MatMul", ["x1", "Wq2"], ["q2"]),
      node("MatMul", ["encoder_hidden_states", "Wk2"], ["k2"]),
      node("MatMul", ["encoder_hidden_states", "Wv2"], ["v2"]),
      ...a2.nodes,
      node("Add", ["x1", "o2"], ["out"]),
    ],
    initializers: [
      initializer("Wq1", [C, C], W.q1),
      initializer("Wk1", [C, C], W.k1),
      initializer("Wv1", [C, C], W.v1),
      initializer("Wq2", [C, C], W.q2),
      initializer("Wk2", [CT, C], W.k2),
      initializer("Wv2", [CT, C], W.v2),
      ...a1.inits,
      ...a2.inits,
    ],
  });
}

type Outputs = Record<string, { data: Float32Array; dims: readonly number[] }>;

async function run(m: Model, feeds: Record<string, [Float32Array, number[]]>): Promise<Outputs> {
  const session = await createSession(encodeModel(m));
  const input: Record<string, OrtTensor> = {};
  for (const [k, [data, dims]] of Object.entries(feeds)) {
    input[k] = new ort.Tensor("float32", data, dims);
  }
  const res = await session.run(input);
  const out: Outputs = {};
  for (const [k, t] of Object.entries(res)) {
    out[k] = { data: t.data as Float32Array, dims: t.dims };
  }
  await session.release();
  return out;
}

/** x [rows, k] @ w [k, n]. */
function matmul(x: Float32Array, w: Float32Array, k: number, n: number): Float32Array {
  const rows = x.length / k;
  const out = new Float32Array(rows * n);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let i = 0; i < k; i++) s += x[r * k + i] * w[i * n + j];
      out[r * n + j] = s;
    }
  }
  return out;
}

/** [B, T, H·D] -> [B, H, T, D]. */
function toHeads(x: Float32Array, t: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < t; i++) {
        for (let j = 0; j < D; j++) {
          out[((b * H + h) * t + i) * D + j] = x[(b * t + i) * C + h * D + j];
        }
      }
    }
  }
  return out;
}

/** mean over heads of softmax(Q Kᵀ · scale + bias[b, h]) -> [B, Nq, Nk]. */
function meanProbs(
  q: Float32Array,
  k: Float32Array,
  nq: number,
  nk: number,
  scale: number,
  bias?: Float32Array,
): Float32Array {
  const out = new Float32Array(B * nq * nk);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < nq; i++) {
        const row = new Float64Array(nk);
        for (let j = 0; j < nk; j++) {
          let s = 0;
          for (let c = 0; c < D; c++) {
            s += q[((b * H + h) * nq + i) * D + c] * k[((b * H + h) * nk + j) * D + c];
          }
          row[j] = s * scale + (bias ? bias[((b * H + h) * nq + i) * nk + j] : 0);
        }
        const mx = Math.max(...row);
        let z = 0;
        for (let j = 0; j < nk; j++) z += Math.exp(row[j] - mx);
        for (let j = 0; j < nk; j++) out[(b * nq + i) * nk + j] += Math.exp(row[j] - mx) / z / H;
      }
    }
  }
  return out;
}

function close(a: Float32Array, b: Float32Array, tol: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  assert.ok(worst <= tol, `${what}: max |diff| ${worst} > ${tol}`);
}

const baseFeeds = (): Record<string, [Float32Array, number[]]> => ({
  sample: [sample, [B, N, C]],
  encoder_hidden_states: [ehs, [B, L, CT]],
});

const expected: Record<Form, { layout: string; scale: number | undefined; factors: number }> = {
  bmm: { layout: "(bh)nd", scale: SCALE, factors: 0 },
  sdpa: { layout: "bhnd", scale: 1, factors: 2 },
  mha: { layout: "bnc", scale: undefined, factors: 0 },
  attention23: { layout: "bnc", scale: undefined, factors: 0 },
};

for (const form of ["bmm", "sdpa", "mha", "attention23"] as const) {
  Deno.test(`hooks (${form}): find, tap, bias`, async (t) => {
    const m = buildModel(form);
    const snapshot = encodeModel(m);
    const cores = findAttention(m);
    const original = await run(m, baseFeeds());

    await t.step("findAttention sees one self and one cross core", () => {
      assert.deepEqual(cores.map((c) => c.kind), ["self", "cross"]);
      for (const c of cores) {
        assert.equal(c.layout, expected[form].layout);
        assert.equal(c.heads, H);
        assert.equal(c.scale, expected[form].scale);
        assert.equal(c.scaleFactors.length, expected[form].factors);
      }
      assert.deepEqual(cores.map((c) => c.index), [0, 1]);
    });

    await t.step("taps give Q, K as [B, heads, N, d] and matching probabilities", async () => {
      const { model: tapped, taps } = tapAttention(m, cores, { qk: true, probs: true });
      const out = await run(tapped, baseFeeds());
      close(out.out.data, original.out.data, 1e-5, "original output");
      // Independent Q (self) and K (cross) from the inputs and weights.
      const qSelf = toHeads(matmul(sample, W.q1, C, C), N);
      const kCross = toHeads(matmul(ehs, W.k2, CT, C), L);
      close(out[taps[0].q!].data, qSelf, 1e-5, "self Q");
      close(out[taps[1].k!].data, kCross, 1e-5, "cross K");
      assert.deepEqual(out[taps[0].q!].dims, [B, H, N, D]);
      assert.deepEqual(out[taps[1].k!].dims, [B, H, L, D]);
      for (const [i, tap] of taps.entries()) {
        const nk = i === 0 ? N : L;
        const sv = tap.scaleOutput ? out[tap.scaleOutput].data[0] : undefined;
        const scale = resolveScale(tap, D, sv);
        assert.ok(Math.abs(scale - SCALE) < 1e-6, `scale ${scale}`);
        const ref = meanProbs(out[tap.q!].data, out[tap.k!].data, N, nk, scale);
        close(out[tap.probs!].data, ref, 1e-5, `probs of core ${i}`);
        assert.deepEqual(out[tap.probs!].dims, [B, N, nk]);
      }
    });

    await t.step("zero bias changes nothing; -1e4 on a key removes it", async () => {
      const { model: biased, biasInputs } = biasAttention(m, cores);
      assert.equal(biasInputs.length, 2);
      const zeros = {
        ...baseFeeds(),
        [biasInputs[0]]: [new Float32Array(N * N), [1, 1, N, N]],
        [biasInputs[1]]: [new Float32Array(N * L), [1, 1, N, L]],
      } as Record<string, [Float32Array, number[]]>;
      close((await run(biased, zeros)).out.data, original.out.data, 1e-5, "zero bias");

      const drop = 1;
      const mask = new Float32Array(N * L);
      for (let i = 0; i < N; i++) mask[i * L + drop] = -1e4;
      const masked = await run(biased, { ...zeros, [biasInputs[1]]: [mask, [1, 1, N, L]] });
      // Reference: the unmodified model fed the text without token `drop`.
      const fewer = new Float32Array(B * (L - 1) * CT);
      for (let b = 0, o = 0; b < B; b++) {
        for (let j = 0; j < L; j++) {
          if (j === drop) continue;
          fewer.set(ehs.subarray((b * L + j) * CT, (b * L + j + 1) * CT), o);
          o += CT;
        }
      }
      const ref = await run(m, {
        sample: [sample, [B, N, C]],
        encoder_hidden_states: [fewer, [B, L - 1, CT]],
      });
      close(masked.out.data, ref.out.data, 1e-4, "masked key");
    });

    await t.step("a per-batch, per-head bias lands on the right head", async () => {
      const { model: biased, biasInputs } = biasAttention(m, cores);
      const again = findAttention(biased);
      assert.equal(again.length, 2);
      const { model: tapped, taps } = tapAttention(biased, again, { qk: true, probs: true });
      const bias = seeded(3)(B * H * N * N).map((x) => 3 * x);
      const out = await run(tapped, {
        ...baseFeeds(),
        [biasInputs[0]]: [bias, [B, H, N, N]],
        [biasInputs[1]]: [new Float32Array(N * L), [1, 1, N, L]],
      });
      const tap = taps[0];
      const sv = tap.scaleOutput ? out[tap.scaleOutput].data[0] : undefined;
      const ref = meanProbs(
        out[tap.q!].data,
        out[tap.k!].data,
        N,
        N,
        resolveScale(tap, D, sv),
        bias,
      );
      close(out[tap.probs!].data, ref, 1e-5, "biased probs");
    });

    await t.step("the input model is not mutated", () => {
      assert.deepEqual(encodeModel(m), snapshot);
    });
  });
}
