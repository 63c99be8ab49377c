/**
 * Every attention form the hooks accept, on one-layer graphs whose truth is onnxruntime's own
 * computation: the value input is a per-head identity, so the op's (or the P·V Einsum's) output
 * IS its attention probabilities, and the tapped probabilities must equal it. Covers
 * com.microsoft MultiHeadAttention (q/k/v bias, key-padding masks of rank 1/2/3, attention bias,
 * 4-D key, packed QKV and packed KV), com.microsoft Attention (stacked QKV weights, bias, mask
 * index, attention bias), opset-23 Attention (float and boolean masks), Einsum attention in the
 * common equations, float16 layers, and the forms that are refused (with their reasons).
 * Includes field-forms.md F4 (a), (b), (d) and F7 (the small layer).
 */
import assert from "node:assert/strict";
import { initializer, model, node, valueInfo } from "../lib/onnx/build.ts";
import { encodeModel } from "../lib/onnx/proto.ts";
import { createSession, ort, type OrtTensor } from "../lib/onnx/ort.ts";
import { DataType, type Model, type NodeProto, type TensorProto } from "../lib/onnx/types.ts";
import { findAttention, scanAttention } from "../lib/hooks/find.ts";
import { tapAttention } from "../lib/hooks/tap.ts";
import { biasAttention } from "../lib/hooks/bias.ts";
import { requireAttention } from "../lib/hooks/report.ts";
import { lowerEinsum, lowerFusedAttention } from "../lib/hooks/lower.ts";
import { withFloat32Io } from "../lib/onnx/float_io.ts";
import { loadDenoiser } from "../lib/runtime/denoiser.ts";
import { tensor } from "../lib/tensor.ts";
import { f16, pruneDead } from "./field_forms_support.ts";

const B = 2, NQ = 3, NK = 4, H = 2, D = NK, C = H * D;
const MS = { domain: "com.microsoft" };

function seeded(seed: number): (n: number) => Float32Array {
  let s = seed;
  return (n) =>
    Float32Array.from({ length: n }, () => {
      s = (s * 1103515245 + 12345) % 2147483648;
      return (s / 2147483648) * 2 - 1;
    });
}
const rnd = seeded(11);

/** [b, n, heads·n] with each head's slice the n×n identity (so attention output = probs). */
function eyeValue(b: number, n: number, heads: number): Float32Array {
  const v = new Float32Array(b * n * heads * n);
  for (let i = 0; i < b; i++) {
    for (let j = 0; j < n; j++) {
      for (let h = 0; h < heads; h++) v[((i * n + j) * heads + h) * n + j] = 1;
    }
  }
  return v;
}

/** Mean over heads of an op output [b, nq, heads·nk] laid out head-major in the last axis. */
function headMean(out: Float32Array, b: number, nq: number, heads: number, nk: number) {
  const r = new Float32Array(b * nq * nk);
  for (let i = 0; i < b * nq; i++) {
    for (let h = 0; h < heads; h++) {
      for (let j = 0; j < nk; j++) r[i * nk + j] += out[(i * heads + h) * nk + j] / heads;
    }
  }
  return r;
}

type Feeds = Record<string, OrtTensor>;
const f32 = (data: Float32Array, dims: number[]) => new ort.Tensor("float32", data, dims);
const i32 = (data: number[], dims: number[]) =>
  new ort.Tensor("int32", Int32Array.from(data), dims);

async function run(m: Model, feeds: Feeds, fetch?: string[]) {
  const s = await createSession(encodeModel(m));
  try {
    const r = await s.run(feeds, fetch ?? s.outputNames);
    return Object.fromEntries(
      Object.entries(r).map(([k, t]) => [k, Float32Array.from(t.data as Float32Array)]),
    );
  } finally {
    await s.release();
  }
}

/** Tapped probabilities of the only core, fetched alone from a graph pruned to the tap. */
async function tapProbs(m: Model, feeds: Feeds, opts: { heads?: number; prune?: boolean } = {}) {
  const cores = findAttention(m, { heads: opts.heads });
  assert.equal(cores.length, 1, "one core");
  const { model: tapped, taps } = tapAttention(m, cores, { qk: false, probs: true });
  let use = tapped;
  if (opts.prune) {
    // onnxruntime's CPU kernels lack packed MHA; the tap does not need the op itself.
    use = pruneDead({
      ...tapped,
      graph: {
        ...tapped.graph,
        output: tapped.graph.output.filter((o) => o.name === taps[0].probs),
      },
    });
    const needed = new Set(use.graph.node.flatMap((n) => n.input));
    use = {
      ...use,
      graph: { ...use.graph, input: use.graph.input.filter((i) => needed.has(i.name)) },
    };
    feeds = Object.fromEntries(Object.entries(feeds).filter(([k]) => needed.has(k)));
  }
  return (await run(use, feeds, [taps[0].probs!]))[taps[0].probs!];
}

function close(a: Float32Array, b: Float32Array, tol: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: length ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  assert.ok(worst <= tol, `${what}: max |diff| ${worst} > ${tol}`);
}

/** The op replaced by the primitive ops it computes (for autodiff) gives the op's output. */
async function checkLowered(m: Model, feeds: Feeds, what: string, want?: Float32Array) {
  const lowered = lowerFusedAttention(m, findAttention(m));
  assert.ok(!lowered.graph.node.some((n) => /Attention$/.test(n.opType)), `${what}: op left`);
  const got = (await run(lowered, feeds)).out;
  close(got, want ?? (await run(m, feeds)).out, 2e-6, `${what}: lowered output`);
}

// ---- com.microsoft MultiHeadAttention -------------------------------------------------------

const q3 = rnd(B * NQ * C), k3 = rnd(B * NK * C), v3 = eyeValue(B, NK, H);
const qkvBias = Float32Array.from([...rnd(2 * C), ...new Float32Array(C)]); // v bias 0: V stays I

function mhaLayer(
  inputs: string[],
  extra: ReturnType<typeof valueInfo>[] = [],
  inits: TensorProto[] = [],
  nq = NQ,
) {
  return model({
    inputs: [
      valueInfo("q", [B, nq, C]),
      valueInfo("k", [B, NK, C]),
      valueInfo("v", [B, NK, C]),
      ...extra,
    ],
    outputs: [valueInfo("out", [B, nq, C])],
    nodes: [node("MultiHeadAttention", inputs, ["out"], { num_heads: H }, MS)],
    initializers: inits,
  });
}
const mhaFeeds = (): Feeds => ({
  q: f32(q3, [B, NQ, C]),
  k: f32(k3, [B, NK, C]),
  v: f32(v3, [B, NK, C]),
});

const mhaCases: [string, Model, Feeds][] = [
  [
    "q/k/v bias",
    mhaLayer(["q", "k", "v", "b"], [], [initializer("b", [3 * C], qkvBias)]),
    mhaFeeds(),
  ],
  [
    "key_padding_mask [B, Nk]",
    mhaLayer(["q", "k", "v", "b", "m"], [valueInfo("m", [B, NK], DataType.INT32)], [
      initializer("b", [3 * C], qkvBias),
    ]),
    { ...mhaFeeds(), m: i32([1, 1, 0, 1, 1, 0, 0, 1], [B, NK]) },
  ],
  [
    "key_padding_mask [B] (key lengths)",
    mhaLayer(["q", "k", "v", "", "m"], [valueInfo("m", [B], DataType.INT32)]),
    { ...mhaFeeds(), m: i32([2, 3], [B]) },
  ],
  [
    "key_padding_mask [B, Nq, Nk]",
    mhaLayer(["q", "k", "v", "", "m"], [valueInfo("m", [B, NQ, NK], DataType.INT32)]),
    {
      ...mhaFeeds(),
      m: i32(Array.from({ length: B * NQ * NK }, (_, i) => (i % 3 ? 1 : 0)), [B, NQ, NK]),
    },
  ],
  [
    "attention_bias [1, heads, Nq, Nk]",
    mhaLayer(["q", "k", "v", "", "", "ab"], [valueInfo("ab", [1, H, NQ, NK])]),
    { ...mhaFeeds(), ab: f32(rnd(H * NQ * NK).map((x) => 3 * x), [1, H, NQ, NK]) },
  ],
];

for (const [name, m, feeds] of mhaCases) {
  Deno.test(`MultiHeadAttention with ${name}: tap = the op's own probabilities`, async () => {
    const truth = headMean((await run(m, feeds)).out, B, NQ, H, NK);
    close(await tapProbs(m, feeds), truth, 2e-6, name);
    await checkLowered(m, feeds, name);
  });
}

Deno.test("MultiHeadAttention with a 4-D key/value: bias reaches Q only, as in onnxruntime", async () => {
  const k4 = new Float32Array(B * H * NK * D), v4 = new Float32Array(B * H * NK * D);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let j = 0; j < NK; j++) {
        for (let c = 0; c < D; c++) {
          k4[((b * H + h) * NK + j) * D + c] = k3[(b * NK + j) * C + h * D + c];
          v4[((b * H + h) * NK + j) * D + c] = j === c ? 1 : 0;
        }
      }
    }
  }
  const m = model({
    inputs: [
      valueInfo("q", [B, NQ, C]),
      valueInfo("k", [B, H, NK, D]),
      valueInfo("v", [B, H, NK, D]),
    ],
    outputs: [valueInfo("out", [B, NQ, C])],
    nodes: [node("MultiHeadAttention", ["q", "k", "v", "b"], ["out"], { num_heads: H }, MS)],
    initializers: [initializer("b", [3 * C], qkvBias)],
  });
  const feeds = { q: f32(q3, [B, NQ, C]), k: f32(k4, [B, H, NK, D]), v: f32(v4, [B, H, NK, D]) };
  close(
    await tapProbs(m, feeds),
    headMean((await run(m, feeds)).out, B, NQ, H, NK),
    2e-6,
    "4-D key",
  );
  await checkLowered(m, feeds, "4-D key");
});

Deno.test("F4 (a), (b): MHA bias and key-padding mask give onnxruntime's [0.6698, 0.3302] and [1, 0]", async () => {
  const eye = (n: string) => initializer(n, [2, 2], [1, 0, 0, 1]);
  const layer = (
    inputs: string[],
    extra: ReturnType<typeof valueInfo>[] = [],
    inits: TensorProto[] = [],
  ) =>
    model({
      inputs: [
        valueInfo("sample", [1, 1, 2]),
        valueInfo("encoder_hidden_states", [1, 2, 2]),
        ...extra,
      ],
      outputs: [valueInfo("out", [1, 1, 2])],
      nodes: [
        node("MatMul", ["sample", "Wq"], ["q"]),
        node("MatMul", ["encoder_hidden_states", "Wk"], ["k"]),
        node("MatMul", ["encoder_hidden_states", "Wv"], ["v"]),
        node("MultiHeadAttention", inputs, ["out"], { num_heads: 1 }, MS),
      ],
      initializers: [eye("Wq"), eye("Wk"), eye("Wv"), ...inits],
    });
  const ctx = f32(Float32Array.from([1, 0, 0, 1]), [1, 2, 2]);
  const a = layer(["q", "k", "v", "qkv_bias"], [], [
    initializer("qkv_bias", [6], [1, 0, 0, 0, 0, 0]),
  ]);
  const pa = await tapProbs(a, {
    sample: f32(new Float32Array(2), [1, 1, 2]),
    encoder_hidden_states: ctx,
  });
  const e = Math.exp(Math.SQRT1_2);
  close(pa, Float32Array.from([e / (e + 1), 1 / (e + 1)]), 1e-6, "(a)");
  const b = layer(["q", "k", "v", "", "key_padding_mask"], [
    valueInfo("key_padding_mask", [1, 2], DataType.INT32),
  ]);
  const pb = await tapProbs(b, {
    sample: f32(Float32Array.from([1, 0]), [1, 1, 2]),
    encoder_hidden_states: ctx,
    key_padding_mask: i32([1, 0], [1, 2]),
  });
  close(pb, Float32Array.from([1, 0]), 1e-6, "(b)");
  const [core] = findAttention(b);
  assert.equal(core.kind, "cross");
});

// Packed forms: onnxruntime's CPU kernels refuse them, so the truth is the unpacked op.
Deno.test("MultiHeadAttention packed QKV / packed KV: tap = the unpacked op's probabilities", async () => {
  const N = NK;
  const x = rnd(B * N * C), ctx = rnd(B * NK * C);
  const packedSelf = new Float32Array(B * N * H * 3 * D);
  const packedKv = new Float32Array(B * NK * H * 2 * D);
  const qS = new Float32Array(B * N * C), kS = new Float32Array(B * N * C);
  const kC = new Float32Array(B * NK * C);
  for (let i = 0; i < B * N; i++) {
    for (let h = 0; h < H; h++) {
      for (let c = 0; c < D; c++) {
        const at = (slot: number, slots: number) => ((i * H + h) * slots + slot) * D + c;
        qS[i * C + h * D + c] = packedSelf[at(0, 3)] = x[i * C + h * D + c];
        kS[i * C + h * D + c] = packedSelf[at(1, 3)] = ctx[i * C + h * D + c];
        packedSelf[at(2, 3)] = v3[i * C + h * D + c];
        kC[i * C + h * D + c] = packedKv[at(0, 2)] = ctx[i * C + h * D + c];
        packedKv[at(1, 2)] = v3[i * C + h * D + c];
      }
    }
  }
  const bias = initializer("b", [3 * C], qkvBias);
  const unpacked = mhaLayer(["q", "k", "v", "b"], [], [bias]);
  const outSelf = (await run(mhaLayer(["q", "k", "v", "b"], [], [bias], N), {
    q: f32(qS, [B, N, C]),
    k: f32(kS, [B, N, C]),
    v: f32(v3, [B, N, C]),
  })).out;
  const truthSelf = headMean(outSelf, B, N, H, NK);
  const qkv = model({
    inputs: [valueInfo("qkv", [B, N, H, 3, D])],
    outputs: [valueInfo("out", [B, N, C])],
    nodes: [node("MultiHeadAttention", ["qkv", "", "", "b"], ["out"], { num_heads: H }, MS)],
    initializers: [bias],
  });
  close(
    await tapProbs(qkv, { qkv: f32(packedSelf, [B, N, H, 3, D]) }, { prune: true }),
    truthSelf,
    2e-6,
    "QKV",
  );
  assert.equal(findAttention(qkv)[0].kind, "self");
  await checkLowered(qkv, { qkv: f32(packedSelf, [B, N, H, 3, D]) }, "QKV", outSelf);

  const outCross = (await run(unpacked, {
    q: f32(q3, [B, NQ, C]),
    k: f32(kC, [B, NK, C]),
    v: f32(v3, [B, NK, C]),
  })).out;
  const truthCross = headMean(outCross, B, NQ, H, NK);
  const kv = model({
    inputs: [valueInfo("q", [B, NQ, C]), valueInfo("kv", [B, NK, H, 2, D])],
    outputs: [valueInfo("out", [B, NQ, C])],
    nodes: [node("MultiHeadAttention", ["q", "kv", "", "b"], ["out"], { num_heads: H }, MS)],
    initializers: [bias],
  });
  const feeds = { q: f32(q3, [B, NQ, C]), kv: f32(packedKv, [B, NK, H, 2, D]) };
  close(await tapProbs(kv, feeds, { prune: true }), truthCross, 2e-6, "KV");
  await checkLowered(kv, feeds, "KV", outCross);
});

// ---- com.microsoft Attention (projection inside the op) -------------------------------------

/** Inverse of an n×n matrix (Gauss–Jordan, partial pivoting). */
function inverse(a: Float32Array, n: number): Float64Array {
  const m = Float64Array.from({ length: n * 2 * n }, (_, i) => {
    const r = Math.floor(i / (2 * n)), c = i % (2 * n);
    return c < n ? a[r * n + c] : c - n === r ? 1 : 0;
  });
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) {
      if (Math.abs(m[r * 2 * n + c]) > Math.abs(m[p * 2 * n + c])) p = r;
    }
    for (let j = 0; j < 2 * n; j++) {
      [m[c * 2 * n + j], m[p * 2 * n + j]] = [m[p * 2 * n + j], m[c * 2 * n + j]];
    }
    const d = m[c * 2 * n + c];
    for (let j = 0; j < 2 * n; j++) m[c * 2 * n + j] /= d;
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = m[r * 2 * n + c];
      for (let j = 0; j < 2 * n; j++) m[r * 2 * n + j] -= f * m[c * 2 * n + j];
    }
  }
  return Float64Array.from({ length: n * n }, (_, i) => m[Math.floor(i / n) * 2 * n + n + (i % n)]);
}

Deno.test("com.microsoft Attention (stacked QKV weights): tap = the op's probabilities, with masks", async () => {
  // One image, N = Cin = 4 tokens: V = X·[X⁻¹ | X⁻¹] = [I | I], so the output holds each head's P.
  const N = 4, CIN = 4;
  const x = rnd(N * CIN).map((v, i) => v + (i % (CIN + 1) === 0 ? 2 : 0));
  const inv = inverse(x, N);
  const w = new Float32Array(CIN * 3 * C);
  const wq = rnd(CIN * 2 * C).map((v) => 2 * v);
  for (let r = 0; r < CIN; r++) {
    for (let c = 0; c < 2 * C; c++) w[r * 3 * C + c] = wq[r * 2 * C + c];
    for (let h = 0; h < H; h++) {
      for (let c = 0; c < N; c++) w[r * 3 * C + 2 * C + h * N + c] = inv[r * N + c];
    }
  }
  const layer = (extraIn: string[], extra: ReturnType<typeof valueInfo>[] = []) =>
    model({
      inputs: [valueInfo("x", [1, N, CIN]), ...extra],
      outputs: [valueInfo("out", [1, N, C])],
      nodes: [node("Attention", ["x", "w", "b", ...extraIn], ["out"], { num_heads: H }, MS)],
      initializers: [initializer("w", [CIN, 3 * C], w), initializer("b", [3 * C], qkvBias)],
    });
  const cases: [string, Model, Feeds][] = [
    ["plain", layer([]), {}],
    ["mask_index [B, N]", layer(["m"], [valueInfo("m", [1, N], DataType.INT32)]), {
      m: i32([1, 1, 0, 1], [1, N]),
    }],
    ["mask_index [B] (lengths)", layer(["m"], [valueInfo("m", [1], DataType.INT32)]), {
      m: i32([3], [1]),
    }],
    [
      "attention_bias",
      layer(["", "", "ab"], [valueInfo("ab", [1, H, N, N])]),
      { ab: f32(rnd(H * N * N).map((v) => 2 * v), [1, H, N, N]) },
    ],
  ];
  for (const [name, m, extra] of cases) {
    const feeds = { x: f32(x, [1, N, CIN]), ...extra };
    const truth = headMean((await run(m, feeds)).out, 1, N, H, N);
    close(await tapProbs(m, feeds), truth, 1e-5, name);
    await checkLowered(m, feeds, name);
  }
});

// ---- opset-23 Attention ----------------------------------------------------------------------

Deno.test("opset-23 Attention with float and boolean masks: tap = the op's probabilities", async () => {
  const layer = (maskType?: number, maskDims?: number[]) =>
    model({
      opset: 23,
      inputs: [
        valueInfo("q", [B, NQ, C]),
        valueInfo("k", [B, NK, C]),
        valueInfo("v", [B, NK, C]),
        ...(maskType ? [valueInfo("mask", maskDims!, maskType)] : []),
      ],
      outputs: [valueInfo("out", [B, NQ, C])],
      nodes: [node("Attention", ["q", "k", "v", ...(maskType ? ["mask"] : [])], ["out"], {
        q_num_heads: H,
        kv_num_heads: H,
      })],
    });
  const boolMask = new ort.Tensor(
    "bool",
    Uint8Array.from({ length: B * NQ * NK }, (_, i) => (i % 4 === 1 ? 0 : 1)),
    [B, 1, NQ, NK],
  );
  const cases: [string, Model, Feeds][] = [
    ["no mask", layer(), {}],
    ["float mask [Nq, Nk]", layer(DataType.FLOAT, [NQ, NK]), {
      mask: f32(rnd(NQ * NK).map((v) => 4 * v), [NQ, NK]),
    }],
    ["bool mask [B, 1, Nq, Nk]", layer(DataType.BOOL, [B, 1, NQ, NK]), { mask: boolMask }],
  ];
  for (const [name, m, extra] of cases) {
    const feeds = { ...mhaFeeds(), ...extra };
    close(await tapProbs(m, feeds), headMean((await run(m, feeds)).out, B, NQ, H, NK), 2e-6, name);
    await checkLowered(m, feeds, name);
    // The steering bias composes with the op's own mask: zeros change nothing.
    const { model: biased, biasInputs } = biasAttention(m, findAttention(m));
    const zero = f32(new Float32Array(1), [1, 1, 1, 1]);
    close(
      (await run(biased, { ...feeds, [biasInputs[0]]: zero })).out,
      (await run(m, feeds)).out,
      1e-6,
      `${name} bias 0`,
    );
  }
});

Deno.test("opset-23 Attention with grouped-query heads (4 query, 2 key/value): tap = the op's probabilities", async () => {
  const QH = 4, KVH = 2;
  const q = rnd(B * NQ * QH * D), k = rnd(B * NK * KVH * D);
  const m = model({
    opset: 23,
    inputs: [
      valueInfo("q", [B, NQ, QH * D]),
      valueInfo("k", [B, NK, KVH * D]),
      valueInfo("v", [B, NK, KVH * NK]),
    ],
    outputs: [valueInfo("out", [B, NQ, QH * NK])],
    nodes: [node("Attention", ["q", "k", "v"], ["out"], { q_num_heads: QH, kv_num_heads: KVH })],
  });
  const feeds = {
    q: f32(q, [B, NQ, QH * D]),
    k: f32(k, [B, NK, KVH * D]),
    v: f32(eyeValue(B, NK, KVH), [B, NK, KVH * NK]),
  };
  close(await tapProbs(m, feeds), headMean((await run(m, feeds)).out, B, NQ, QH, NK), 2e-6, "GQA");
  await checkLowered(m, feeds, "GQA");
});

// ---- Einsum -----------------------------------------------------------------------------------

/** q, k as [B·H, N, D] (3-D) or [B, H, N, D] (4-D) inputs, V = per-head identity. */
const qE = rnd(B * H * NQ * D), kE = rnd(B * H * NK * D);
const vE = Float32Array.from(
  { length: B * H * NK * NK },
  (_, i) => (Math.floor(i / NK) % NK === i % NK ? 1 : 0),
);
const einsumCases: { name: string; rank: 3 | 4; nodes: NodeProto[]; qLayout?: "bnhd" }[] = [
  { name: "bid,bjd->bij / bij,bjd->bid", rank: 3, nodes: [] },
  { name: "spaced b i d, b j d -> b i j", rank: 3, nodes: [] },
  { name: "operands swapped bjd,bid->bij", rank: 3, nodes: [] },
  { name: "ellipsis ...id,...jd->...ij", rank: 3, nodes: [] },
  { name: "bhid,bhjd->bhij", rank: 4, nodes: [] },
  { name: "bhid,bhdj->bhij after a separate Transpose", rank: 4, nodes: [] },
  { name: "bhqd,bhkd->bhqk (other letters)", rank: 4, nodes: [] },
  { name: "bihd,bjhd->bhij (Q, K as [B, N, heads, d])", rank: 4, nodes: [], qLayout: "bnhd" },
];
const eqs: Record<string, [string, string, string[]]> = {
  "bid,bjd->bij / bij,bjd->bid": ["bid,bjd->bij", "bij,bjd->bid", ["q", "k"]],
  "spaced b i d, b j d -> b i j": ["b i d, b j d -> b i j", "b i j, b j d -> b i d", ["q", "k"]],
  "operands swapped bjd,bid->bij": ["bjd,bid->bij", "bij,bjd->bid", ["k", "q"]],
  "ellipsis ...id,...jd->...ij": ["...id,...jd->...ij", "...ij,...jd->...id", ["q", "k"]],
  "bhid,bhjd->bhij": ["bhid,bhjd->bhij", "bhij,bhjd->bhid", ["q", "k"]],
  "bhid,bhdj->bhij after a separate Transpose": ["bhid,bhdj->bhij", "bhij,bhjd->bhid", ["q", "kt"]],
  "bhqd,bhkd->bhqk (other letters)": ["bhqd,bhkd->bhqk", "bhqk,bhkd->bhqd", ["q", "k"]],
  "bihd,bjhd->bhij (Q, K as [B, N, heads, d])": ["bihd,bjhd->bhij", "bhij,bhjd->bhid", ["q", "k"]],
};

for (const c of einsumCases) {
  Deno.test(`Einsum attention ${c.name}: one core, tap = the layer's probabilities`, async () => {
    const [scoreEq, pvEq, operands] = eqs[c.name];
    const bnhd = c.qLayout === "bnhd";
    const qDims = c.rank === 3 ? [B * H, NQ, D] : bnhd ? [B, NQ, H, D] : [B, H, NQ, D];
    const kDims = c.rank === 3 ? [B * H, NK, D] : bnhd ? [B, NK, H, D] : [B, H, NK, D];
    const vDims = c.rank === 3 ? [B * H, NK, NK] : [B, H, NK, NK];
    const toBnhd = (t: Float32Array, n: number) => {
      const o = new Float32Array(t.length);
      for (let b = 0; b < B; b++) {
        for (let h = 0; h < H; h++) {
          for (let i = 0; i < n; i++) {
            for (let d = 0; d < D; d++) {
              o[((b * n + i) * H + h) * D + d] = t[((b * H + h) * n + i) * D + d];
            }
          }
        }
      }
      return o;
    };
    const m = model({
      inputs: [valueInfo("q", qDims), valueInfo("k", kDims), valueInfo("v", vDims)],
      outputs: [valueInfo("out", [...vDims.slice(0, -2), NQ, NK])],
      nodes: [
        ...(operands[1] === "kt" ? [node("Transpose", ["k"], ["kt"], { perm: [0, 1, 3, 2] })] : []),
        node("Einsum", operands, ["s"], { equation: scoreEq }),
        node("Mul", ["s", "scale"], ["s2"]),
        node("Softmax", ["s2"], ["p"], { axis: -1 }),
        node("Einsum", ["p", "v"], ["out"], { equation: pvEq }),
      ],
      initializers: [initializer("scale", [], [1 / Math.sqrt(D)])],
    });
    const feeds = {
      q: f32(bnhd ? toBnhd(qE, NQ) : qE, qDims),
      k: f32(bnhd ? toBnhd(kE, NK) : kE, kDims),
      v: f32(vE, vDims),
    };
    const out = (await run(m, feeds)).out; // [B·H or B, H, NQ, NK] = the probabilities
    const truth = new Float32Array(B * NQ * NK);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        for (let i = 0; i < NQ * NK; i++) {
          truth[b * NQ * NK + i] += out[(b * H + h) * NQ * NK + i] / H;
        }
      }
    }
    const { cores, skipped } = scanAttention(m, { heads: H });
    assert.deepEqual([cores.length, skipped.length], [1, 0]);
    assert.equal(cores[0].form, "einsum");
    close(await tapProbs(m, feeds, { heads: H }), truth, 2e-6, c.name);
    // Written as MatMuls for autodiff, the layer computes the same.
    const lowered = lowerEinsum(m);
    assert.ok(!lowered.graph.node.some((n) => n.opType === "Einsum"));
    close((await run(lowered, feeds)).out, out, 1e-6, `${c.name}: lowered`);
    // Q and K taps reproduce the same probabilities.
    const { model: tapped, taps } = tapAttention(m, cores, { qk: true });
    const r = await run(tapped, feeds, [taps[0].q!, taps[0].k!]);
    const q = r[taps[0].q!], k = r[taps[0].k!];
    const mine = new Float32Array(B * NQ * NK);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        for (let i = 0; i < NQ; i++) {
          const row = Array.from({ length: NK }, (_, j) => {
            let s = 0;
            for (let d = 0; d < D; d++) {
              s += q[((b * H + h) * NQ + i) * D + d] * k[((b * H + h) * NK + j) * D + d];
            }
            return s / Math.sqrt(D);
          });
          const mx = Math.max(...row), z = row.reduce((a, v) => a + Math.exp(v - mx), 0);
          row.forEach((v, j) => (mine[(b * NQ + i) * NK + j] += Math.exp(v - mx) / z / H));
        }
      }
    }
    close(mine, truth, 2e-6, `${c.name} from Q, K`);
  });
}

Deno.test("F2 (d): Einsum cross-attention on MatMul projections is one cross core", () => {
  const eye = (n: string) => initializer(n, [2, 2], [1, 0, 0, 1]);
  const m = model({
    inputs: [valueInfo("sample", [1, 1, 2]), valueInfo("encoder_hidden_states", [1, 2, 2])],
    outputs: [valueInfo("out", [1, 1, 2])],
    nodes: [
      node("MatMul", ["sample", "Wq"], ["q"]),
      node("MatMul", ["encoder_hidden_states", "Wk"], ["k"]),
      node("MatMul", ["encoder_hidden_states", "Wv"], ["v"]),
      node("Einsum", ["q", "k"], ["s"], { equation: "bid,bjd->bij" }),
      node("Mul", ["s", "scale"], ["s2"]),
      node("Softmax", ["s2"], ["p"], { axis: -1 }),
      node("Einsum", ["p", "v"], ["out"], { equation: "bij,bjd->bid" }),
    ],
    initializers: [eye("Wq"), eye("Wk"), eye("Wv"), initializer("scale", [], [Math.SQRT1_2])],
  });
  const { cores, skipped } = scanAttention(m);
  assert.deepEqual(cores.map((c) => [c.kind, c.form]), [["cross", "einsum"]]);
  assert.equal(skipped.length, 0);
});

// ---- float16 ----------------------------------------------------------------------------------

Deno.test("F7: a float16 layer taps as float32 and its bias input takes float32", async () => {
  const H16 = DataType.FLOAT16;
  const m = model({
    inputs: [valueInfo("sample", [1, 4, 2], H16)],
    outputs: [valueInfo("out", [1, 4, 2], H16)],
    nodes: [
      node("MatMul", ["sample", "W"], ["q"]),
      node("MatMul", ["sample", "W"], ["k"]),
      node("Transpose", ["k"], ["kt"], { perm: [0, 2, 1] }),
      node("MatMul", ["q", "kt"], ["s"]),
      node("Mul", ["s", "scale"], ["s2"]),
      node("Softmax", ["s2"], ["p"], { axis: -1 }),
      node("MatMul", ["p", "sample"], ["out"]),
    ],
    initializers: [f16("W", [2, 2], [1, 0, 0, 1]), f16("scale", [], [Math.SQRT1_2])],
  });
  const x = Float32Array.from([1, 0, 0, 1, 1, 1, 0, 0]);
  const cores = findAttention(m, { heads: 1 });
  const { model: tapped, taps } = tapAttention(m, cores, { qk: true, probs: true });
  // The caller feeds float32 (Casts at the edges); every tap output is float32.
  const io = withFloat32Io(tapped, ["sample"], ["out"]);
  const r = await run(io.model, { sample: f32(x, [1, 4, 2]) });
  const probs = r[taps[0].probs!];
  const truth = new Float32Array(16);
  for (let i = 0; i < 4; i++) {
    const row = [0, 1, 2, 3].map((j) =>
      (x[2 * i] * x[2 * j] + x[2 * i + 1] * x[2 * j + 1]) * Math.SQRT1_2
    );
    const z = row.reduce((a, v) => a + Math.exp(v), 0);
    row.forEach((v, j) => (truth[i * 4 + j] = Math.exp(v) / z));
  }
  close(probs, truth, 2e-3, "float16 probabilities");
  close(r[taps[0].q!], x, 0, "q");
  const { model: biased, biasInputs } = biasAttention(m, cores);
  const mask = new Float32Array(16).map((_, i) => (i % 4 === 3 ? -1e4 : 0));
  const rb = await run(withFloat32Io(biased, ["sample"], ["out"]).model, {
    sample: f32(x, [1, 4, 2]),
    [biasInputs[0]]: f32(mask, [1, 1, 4, 4]),
  });
  assert.ok(Object.values(rb).every((v) => v.every(Number.isFinite)));
});

// ---- refused forms -----------------------------------------------------------------------------

Deno.test("refused forms are listed as skipped with a reason, and the load-time error names them", () => {
  const m = model({
    inputs: [valueInfo("x", [1, 4, C]), valueInfo("q", [1, 4, C]), valueInfo("k", [1, 4, C])],
    outputs: [valueInfo("y", [1, 4, C]), valueInfo("z", [1, 4, C]), valueInfo("p2", [1, 4, 4])],
    nodes: [
      node("GroupQueryAttention", ["x", "x", "x"], ["y"], { num_heads: H, kv_num_heads: H }, MS),
      node("Attention", ["x", "w", "b"], ["z"], { num_heads: H, unidirectional: 1 }, MS),
      // Attention-like scores whose probabilities are not applied as P·V.
      node("Transpose", ["k"], ["kt"], { perm: [0, 2, 1] }),
      node("MatMul", ["q", "kt"], ["s"]),
      node("Softmax", ["s"], ["p2"], { axis: -1 }),
    ],
    initializers: [
      initializer("w", [C, 3 * C], new Float32Array(3 * C * C)),
      initializer("b", [3 * C], new Float32Array(3 * C)),
    ],
  });
  const scan = scanAttention(m);
  assert.equal(scan.cores.length, 0);
  assert.deepEqual(scan.skipped.map((s) => s.node.opType), [
    "GroupQueryAttention",
    "Attention",
    "Softmax",
  ]);
  assert.match(scan.skipped[1].reason, /unidirectional/);
  assert.throws(
    () => requireAttention(scan, "all", "unet.onnx"),
    (e: Error) =>
      /^unet\.onnx: 3 attention layer\(s\) cannot be tapped/.test(e.message) &&
      /found 0 attention layer/.test(e.message) && /GroupQueryAttention/.test(e.message) &&
      /export the denoiser without attention fusion/.test(e.message),
  );
  requireAttention(scan, "none", "unet.onnx");
});

// ---- the denoiser's load-time checks ------------------------------------------------------------

const DENOISER_IO = { sample: "sample", timestep: "timestep", context: "ctx", output: "out" };

/** A one-layer cross-attention "denoiser" in dtype `dt` (single head, Q·Kᵀ over the projection). */
function tinyDenoiser(dt: number, inits: TensorProto[]): Model {
  return model({
    inputs: [
      valueInfo("sample", [1, 2, 2, 2], dt),
      valueInfo("timestep", [1]),
      valueInfo("ctx", [1, 3, 2], dt),
    ],
    outputs: [valueInfo("out", [1, 2, 2, 2], dt)],
    nodes: [
      // Latent [1, C = 2, 2, 2] → tokens [1, 4, 2] and back.
      node("Reshape", ["sample", "flat"], ["sf"]),
      node("Transpose", ["sf"], ["x"], { perm: [0, 2, 1] }),
      node("MatMul", ["x", "W"], ["q"]),
      node("MatMul", ["ctx", "W"], ["k"]),
      node("Transpose", ["k"], ["kt"], { perm: [0, 2, 1] }),
      node("MatMul", ["q", "kt"], ["s"]),
      node("Mul", ["s", "scale"], ["s2"]),
      node("Softmax", ["s2"], ["p"], { axis: -1 }),
      node("MatMul", ["p", "ctx"], ["o"]),
      node("Add", ["o", "x"], ["y"]),
      node("Transpose", ["y"], ["yt"], { perm: [0, 2, 1] }),
      node("Reshape", ["yt", "latent"], ["out"]),
    ],
    initializers: [
      ...inits,
      initializer("flat", [3], BigInt64Array.from([1n, 2n, 4n])),
      initializer("latent", [4], BigInt64Array.from([1n, 2n, 2n, 2n])),
    ],
  });
}

Deno.test("loadDenoiser: float16 model fed and read as float32; single-head layer found without { heads }", async () => {
  const m = tinyDenoiser(DataType.FLOAT16, [
    f16("W", [2, 2], [1, 0, 0, 1]),
    f16("scale", [], [Math.SQRT1_2]),
  ]);
  const d = await loadDenoiser(encodeModel(m), DENOISER_IO, { source: "fp16.onnx" });
  try {
    const x = [1, 0, 0, 1, 1, 1, 0, 0], c = [1, 0, 0, 1, 1, 1];
    // Channel-major latent [1, 2, 2, 2] whose tokens are x.
    const latent = new Array<number>(8);
    for (let i = 0; i < 4; i++) for (let ch = 0; ch < 2; ch++) latent[ch * 4 + i] = x[2 * i + ch];
    const r = await d.run(tensor([1, 2, 2, 2], latent), 1, tensor([1, 3, 2], c), true);
    assert.equal(r.taps![0].length, 1);
    // The tap folds the model's float16 scale (0.70703 ≈ 1/√2) into q; x up to that.
    close(r.taps![0][0].q.data, Float32Array.from(x), 2e-4, "q");
    // out = softmax(x·cᵀ/√2)·c + x, in float32 here.
    const want = new Float32Array(8);
    for (let i = 0; i < 4; i++) {
      const row = [0, 1, 2].map((j) =>
        (x[2 * i] * c[2 * j] + x[2 * i + 1] * c[2 * j + 1]) * Math.SQRT1_2
      );
      const z = row.reduce((a, v) => a + Math.exp(v), 0);
      for (let ch = 0; ch < 2; ch++) {
        want[ch * 4 + i] = x[2 * i + ch] +
          row.reduce((a, v, j) => a + (Math.exp(v) / z) * c[2 * j + ch], 0);
      }
    }
    close(r.out.data, want, 3e-3, "float16 denoiser output");
  } finally {
    await d.release();
  }
});

Deno.test("loadDenoiser: a bfloat16 model is refused with the reason (no CPU bfloat16 kernels)", async () => {
  const bf = (name: string, dims: number[], v: number[]): TensorProto => {
    const bits = new Uint32Array(new Float32Array(v).buffer);
    return {
      name,
      dims,
      dataType: 16,
      rawData: new Uint8Array(Uint16Array.from(bits, (b) => b >>> 16).buffer),
    };
  };
  const m = tinyDenoiser(16, [bf("W", [2, 2], [1, 0, 0, 1]), bf("scale", [], [Math.SQRT1_2])]);
  // The hooks read bfloat16 constants and build the taps; only onnxruntime's kernels are missing.
  assert.equal(findAttention(m).length, 1);
  await assert.rejects(
    () => loadDenoiser(encodeModel(m), DENOISER_IO, { source: "bf16.onnx" }),
    /^AttnkitError: bf16\.onnx: a bfloat16 denoiser cannot run on wasm: .*Convert the model to float16 or float32/s,
  );
});

Deno.test("loadDenoiser: a fused mask the Q/K taps cannot carry is refused at load", async () => {
  // A timestep input too, so the graph passes the denoiser's input check and reaches the mask rule.
  const m = mhaLayer(["q", "k", "v", "", "m"], [
    valueInfo("m", [B, NK], DataType.INT32),
    valueInfo("t", [1], DataType.FLOAT),
  ]);
  const io = { sample: "q", timestep: "t", context: "k", output: "out" };
  await assert.rejects(
    () => loadDenoiser(encodeModel(m), io, { source: "masked.onnx" }),
    /masked\.onnx: attention layer\(s\) #0 apply a mask inside a fused op/,
  );
});

Deno.test("loadDenoiser: a float16 model's gradient is the float32 network's (VJP on an upcast copy)", async () => {
  const w = [0.9, -0.3, 0.4, 1.1], scale = Math.SQRT1_2;
  const half = tinyDenoiser(DataType.FLOAT16, [f16("W", [2, 2], w), f16("scale", [], [scale])]);
  // The float32 twin holds the float16-rounded weights, so only the arithmetic differs.
  const round = (v: number[]) => Array.from(new Float16Array(v));
  const full = tinyDenoiser(DataType.FLOAT, [
    initializer("W", [2, 2], round(w)),
    initializer("scale", [], round([scale])),
  ]);
  const x = tensor([1, 2, 2, 2], [0.5, -1, 0.25, 1, -0.5, 0.75, 1, 0]);
  const c = tensor([1, 3, 2], [1, 0, 0, 1, 1, 1]);
  const grads = [];
  for (const m of [half, full]) {
    const d = await loadDenoiser(encodeModel(m), DENOISER_IO);
    try {
      const r = await d.run(x, 1, c, true);
      const tap = r.taps![0][0];
      const g = await d.gradient(x, 1, c, [[{
        dq: tensor(tap.q.shape, tap.q.data.map((_, i) => Math.cos(i))),
        dk: tensor(tap.k.shape, tap.k.data.map((_, i) => Math.sin(i))),
      }]]);
      assert.deepEqual(g.shape, [1, 2, 2, 2]);
      grads.push(g.data);
    } finally {
      await d.release();
    }
  }
  assert.ok(grads[1].some((v) => Math.abs(v) > 0.1));
  close(grads[0], grads[1], 1e-5, "float16 vs float32 gradient");
});
