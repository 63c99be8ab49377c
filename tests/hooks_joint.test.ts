/**
 * Joint attention (lib/hooks/joint.ts) on graphs torch built with the real block structure:
 * diffusers' SD3Transformer2DModel and FluxTransformer2DModel with tiny random configs
 * (tests/fixtures/make_joint_fixtures.py; TorchScript and dynamo exporters) and a tiny random embedded DiT
 * (tests/fixtures/make_dit_fixture.py). References are the probabilities torch computed inside
 * the models' own forward passes.
 */
import assert from "node:assert/strict";
import { decodeModel, encodeModel } from "../lib/onnx/proto.ts";
import { createSession, ort, type OrtTensor } from "../lib/onnx/ort.ts";
import type { Model } from "../lib/onnx/types.ts";
import { findAttention } from "../lib/hooks/find.ts";
import { resolveScale, tapAttention } from "../lib/hooks/tap.ts";
import { biasAttention } from "../lib/hooks/bias.ts";
import {
  jointBias,
  jointBlocks,
  jointRanges,
  type JointTokens,
  mergeJointGrads,
} from "../lib/hooks/joint.ts";
import { loadDenoiser } from "../lib/runtime/denoiser.ts";
import { type Tensor, tensor } from "../lib/tensor.ts";
import { AttnkitError } from "../lib/errors.ts";
import type { TapGrad } from "../lib/attention/types.ts";

const dir = new URL("./fixtures/joint/", import.meta.url);
type Arr = { shape: number[]; data: number[] };
interface DiffusersIo {
  inputs: Record<string, Arr>;
  out: number[];
  probs: Arr[];
  text_tokens: number;
  image_tokens: number;
  text_first: boolean;
  heads: number;
}
const io = JSON.parse(Deno.readTextFileSync(new URL("joint_io.json", dir))) as Record<
  string,
  DiffusersIo
>;
const dit = JSON.parse(Deno.readTextFileSync(new URL("dit_io.json", dir)));
const load = (f: string): { bytes: Uint8Array; model: Model } => {
  const bytes = Deno.readFileSync(new URL(f, dir));
  return { bytes, model: decodeModel(bytes, f) };
};

async function run(
  m: Model,
  feeds: Record<string, Arr>,
  ep: "wasm" | "node" = "wasm",
): Promise<Record<string, { data: Float32Array; dims: readonly number[] }>> {
  const session = await createSession(encodeModel(m), { executionProviders: [ep] });
  const input: Record<string, OrtTensor> = {};
  for (const [k, v] of Object.entries(feeds)) {
    input[k] = new ort.Tensor("float32", Float32Array.from(v.data), v.shape);
  }
  const res = await session.run(input);
  await session.release();
  return Object.fromEntries(
    Object.entries(res).map(([k, t]) => [k, { data: t.data as Float32Array, dims: t.dims }]),
  );
}

function worst(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "length");
  let w = 0;
  for (let i = 0; i < a.length; i++) w = Math.max(w, Math.abs(a[i] - b[i]));
  return w;
}

/** Item `b` of a [B, h, N, d] output as a [h, N, d] tensor. */
function item(t: { data: Float32Array; dims: readonly number[] }, b: number): Tensor {
  const [, h, n, d] = t.dims;
  return tensor([h, n, d], t.data.slice(b * h * n * d, (b + 1) * h * n * d));
}

/** Full joint probabilities softmax(q kᵀ s + bias) [h, N, N] of one item (float64). */
function fullProbs(q: Tensor, k: Tensor, s: number, bias?: (i: number, j: number) => number) {
  const [h, n, d] = q.shape;
  const out = new Float64Array(h * n * n);
  for (let hi = 0; hi < h; hi++) {
    for (let i = 0; i < n; i++) {
      const row = new Float64Array(n);
      for (let j = 0; j < n; j++) {
        let acc = 0;
        for (let c = 0; c < d; c++) {
          acc += q.data[(hi * n + i) * d + c] * k.data[(hi * n + j) * d + c];
        }
        row[j] = acc * s + (bias ? bias(i, j) : 0);
      }
      const mx = Math.max(...row);
      let z = 0;
      for (let j = 0; j < n; j++) z += Math.exp(row[j] - mx);
      for (let j = 0; j < n; j++) out[(hi * n + i) * n + j] = Math.exp(row[j] - mx) / z;
    }
  }
  return out;
}

/** A block of torch's probabilities [h, N, N] of item b, rows renormalised or not. */
function torchBlock(
  p: Arr,
  b: number,
  rows: readonly [number, number],
  cols: readonly [number, number],
  renormalise: boolean,
): Float64Array {
  const [, h, n] = p.shape;
  const nr = rows[1] - rows[0], nc = cols[1] - cols[0];
  const out = new Float64Array(h * nr * nc);
  for (let hi = 0; hi < h; hi++) {
    for (let i = 0; i < nr; i++) {
      let z = 0;
      const base = ((b * h + hi) * n + rows[0] + i) * n;
      for (let j = 0; j < nc; j++) z += p.data[base + cols[0] + j];
      for (let j = 0; j < nc; j++) {
        out[(hi * nr + i) * nc + j] = p.data[base + cols[0] + j] / (renormalise ? z : 1);
      }
    }
  }
  return out;
}

for (
  const [name, file, blocks] of [
    ["sd3", "sd3_tiny.onnx", ["double", "double"]],
    ["sd3", "sd3_tiny_dynamo.onnx", ["double", "double"]],
    ["flux", "flux_tiny.onnx", ["double", "single", "single"]],
    ["flux", "flux_tiny_dynamo.onnx", ["double", "single", "single"]],
  ] as const
) {
  Deno.test(`joint: every attention layer of ${file} is joint, taps equal torch`, async () => {
    const ref = io[name];
    const { model } = load(file);
    const cores = findAttention(model, { conditioning: ["encoder_hidden_states"] });
    assert.deepEqual(cores.map((c) => c.joint?.block), blocks);
    for (const c of cores) {
      assert.equal(c.joint!.textFirst, ref.text_first, "token order");
      assert.equal(c.joint!.source, "graph");
    }
    const tapped = tapAttention(model, cores, { qk: true });
    // diffusers computes Flux's rotary tables in float64; onnxruntime-web has no float64 Cast.
    const res = await run(
      tapped.model,
      ref.inputs,
      file.includes("flux_tiny_dynamo") ? "node" : "wasm",
    );
    worst(res.out_sample.data, ref.out) < 1e-4 || assert.fail("tapped graph changed the output");
    const L = ref.text_tokens;
    tapped.taps.forEach((tap, j) => {
      const q = res[tap.q!], k = res[tap.k!];
      const n = q.dims[2], d = q.dims[3];
      assert.equal(n, L + ref.image_tokens);
      const scale = resolveScale(
        tap,
        d,
        tap.scaleOutput ? res[tap.scaleOutput].data[0] : undefined,
      );
      const ranges = jointRanges(cores[j].joint!, n, L);
      for (const b of [0, 1]) {
        const mine = fullProbs(item(q, b), item(k, b), scale);
        const p = ref.probs[j];
        const theirs = p.data.slice(b * ref.heads * n * n, (b + 1) * ref.heads * n * n);
        const w = worst(mine, theirs);
        assert.ok(w < 2e-5, `${name} core ${j} item ${b}: joint probabilities off by ${w}`);
        for (const rows of ["renormalise", "joint"] as const) {
          const blk = jointBlocks(item(q, b), item(k, b), ranges, { rows, scale });
          const r = rows === "renormalise";
          const wSa = worst(blk.self.data, torchBlock(p, b, ranges.image, ranges.image, r));
          const wCa = worst(blk.cross.data, torchBlock(p, b, ranges.image, ranges.text, r));
          assert.ok(wSa < 2e-5 && wCa < 2e-5, `${name} core ${j} ${rows}: ${wSa}, ${wCa}`);
        }
      }
    });
  });
}

Deno.test("joint: renormalised blocks sum to 1 per row, joint blocks together sum to 1", () => {
  const h = 2, n = 7, d = 4;
  const q = tensor([h, n, d], Float32Array.from({ length: h * n * d }, (_, i) => Math.sin(i)));
  const k = tensor([h, n, d], Float32Array.from({ length: h * n * d }, (_, i) => Math.cos(3 * i)));
  const ranges = jointRanges({ block: "double", textFirst: false, source: "config" }, n, 3);
  assert.deepEqual(ranges, { text: [4, 7], image: [0, 4] });
  const re = jointBlocks(q, k, ranges);
  const jo = jointBlocks(q, k, ranges, { rows: "joint" });
  for (let r = 0; r < h * 4; r++) {
    let sa = 0, ca = 0, jsa = 0, jca = 0;
    for (let j = 0; j < 4; j++) (sa += re.self.data[r * 4 + j]), (jsa += jo.self.data[r * 4 + j]);
    for (let j = 0; j < 3; j++) (ca += re.cross.data[r * 3 + j]), (jca += jo.cross.data[r * 3 + j]);
    assert.ok(Math.abs(sa - 1) < 1e-6 && Math.abs(ca - 1) < 1e-6);
    assert.ok(Math.abs(jsa + jca - 1) < 1e-6 && jsa < 1 && jca < 1);
  }
  assert.throws(() => jointRanges(ranges as never, 3, 3), AttnkitError);
  assert.throws(() => jointBlocks(q, k, ranges, { rows: "bogus" as never }), /rows/);
});

Deno.test("joint: a bias on the SD3 CA block removes a text key for image rows only", async () => {
  const ref = io.sd3;
  const { model } = load("sd3_tiny.onnx");
  const cores = findAttention(model, { conditioning: ["encoder_hidden_states"] });
  const tapped = tapAttention(model, cores, { qk: true, probs: true });
  const built = biasAttention(tapped.model, cores);
  const L = ref.text_tokens, n = L + ref.image_tokens;
  const ranges: JointTokens = jointRanges(cores[0].joint!, n, L);
  const ca = new Float32Array(ref.image_tokens * L);
  for (let i = 0; i < ref.image_tokens; i++) ca[i * L + 2] = -1e4;
  const bias = jointBias(null, tensor([1, 1, ref.image_tokens, L], ca), ranges, n)!;
  assert.deepEqual(bias.shape, [1, 1, n, n]);
  const feeds: Record<string, Arr> = { ...ref.inputs };
  feeds[built.biasInputs[0]] = { shape: [...bias.shape], data: [...bias.data] };
  feeds[built.biasInputs[1]] = { shape: [1, 1, 1, 1], data: [0] };
  const res = await run(built.model, feeds);
  const tap = tapped.taps[0];
  const q = res[tap.q!], k = res[tap.k!];
  const scale = resolveScale(tap, q.dims[3], tap.scaleOutput ? res[tap.scaleOutput].data[0] : 0);
  const got = res[tap.probs!].data; // head mean [B, N, N]
  const col = ranges.text[0] + 2;
  for (const b of [0, 1]) {
    const want = fullProbs(item(q, b), item(k, b), scale, (i, j) => bias.data[i * n + j]);
    const h = q.dims[1];
    const mean = new Float64Array(n * n);
    for (let x = 0; x < h * n * n; x++) mean[x % (n * n)] += want[x] / h;
    const w = worst(got.slice(b * n * n, (b + 1) * n * n), mean);
    assert.ok(w < 2e-5, `biased probabilities off by ${w}`);
    for (let i = ranges.image[0]; i < ranges.image[1]; i++) {
      assert.ok(got[b * n * n + i * n + col] < 1e-6);
    }
    const t0 = ranges.text[0];
    assert.ok(got[b * n * n + t0 * n + col] > 1e-4, "text rows keep the key");
  }
});

const ditFeeds = () => ({
  latents: tensor([2, 4, 8, 8], Float32Array.from(dit.sample)),
  context: tensor([2, dit.text_tokens, 12], Float32Array.from(dit.encoder_hidden_states)),
});
const ditIo = {
  sample: "sample",
  timestep: "timestep",
  context: "encoder_hidden_states",
  output: "out_sample",
};

Deno.test("joint: the embedded DiT's taps are torch's renormalised SA and CA blocks", async () => {
  const { bytes } = load("dit_tiny.onnx");
  const den = await loadDenoiser(bytes, ditIo);
  assert.deepEqual(den.parts.map((p) => p.part), [
    "self",
    "cross",
    "self",
    "cross",
    "self",
    "cross",
  ]);
  const { latents, context } = ditFeeds();
  const res = await den.run(latents, 400, context, true);
  assert.ok(worst(res.out.data, dit.out) < 1e-4);
  const L = dit.text_tokens, n = L + dit.image_tokens;
  const img = [L, n] as const, txt = [0, L] as const;
  for (const b of [0, 1]) {
    const taps = res.taps![b];
    assert.equal(taps.length, 6);
    for (let c = 0; c < 3; c++) {
      const [sa, ca] = [taps[2 * c], taps[2 * c + 1]];
      assert.deepEqual([sa.kind, ca.kind, sa.size], ["self", "cross", [4, 4]]);
      const d = sa.q.shape[2];
      const wSa = worst(fullProbsRect(sa.q, sa.k, d), torchBlock(dit.probs[c], b, img, img, true));
      const wCa = worst(fullProbsRect(ca.q, ca.k, d), torchBlock(dit.probs[c], b, img, txt, true));
      assert.ok(wSa < 2e-5 && wCa < 2e-5, `DiT core ${c} item ${b}: ${wSa}, ${wCa}`);
    }
  }
  await den.release();
});

/** softmax(q kᵀ/√d) [h, Nq, Nk] for q [h, Nq, d], k [h, Nk, d]. */
function fullProbsRect(q: Tensor, k: Tensor, d: number): Float64Array {
  const [h, nq] = q.shape, nk = k.shape[1];
  const out = new Float64Array(h * nq * nk);
  for (let hi = 0; hi < h; hi++) {
    for (let i = 0; i < nq; i++) {
      const row = new Float64Array(nk);
      for (let j = 0; j < nk; j++) {
        let acc = 0;
        for (let c = 0; c < d; c++) {
          acc += q.data[(hi * nq + i) * d + c] * k.data[(hi * nk + j) * d + c];
        }
        row[j] = acc / Math.sqrt(d);
      }
      const mx = Math.max(...row);
      let z = 0;
      for (let j = 0; j < nk; j++) z += Math.exp(row[j] - mx);
      for (let j = 0; j < nk; j++) out[(hi * nq + i) * nk + j] = Math.exp(row[j] - mx) / z;
    }
  }
  return out;
}

Deno.test("joint: SA/CA biases through the denoiser give torch's biased output", async () => {
  const { bytes } = load("dit_tiny.onnx");
  const den = await loadDenoiser(bytes, ditIo);
  const { latents, context } = ditFeeds();
  const ni = dit.image_tokens, L = dit.text_tokens;
  const bias: (Tensor | null)[] = den.parts.map(() => null);
  bias[2 * dit.bias_call] = tensor([1, 1, ni, ni], Float32Array.from(dit.bias_sa));
  bias[2 * dit.bias_call + 1] = tensor([1, 1, ni, L], Float32Array.from(dit.bias_ca));
  const res = await den.run(latents, 400, context, false, bias);
  const w = worst(res.out.data, dit.out_biased);
  assert.ok(w < 1e-4, `biased output off by ${w}`);
  assert.ok(worst(res.out.data, dit.out) > 1e-2, "the bias changed nothing");
  await assert.rejects(() => den.run(latents, 400, context, false, [null]), /one entry per tap/);
  await den.release();
});

Deno.test("joint: tap gradients of SA and CA reach the latents (finite differences)", async () => {
  const { bytes } = load("dit_tiny.onnx");
  const den = await loadDenoiser(bytes, ditIo);
  const { latents, context } = ditFeeds();
  const res = await den.run(latents, 400, context, true);
  // S = Σ over taps of <wq, q> + <wk, k> with fixed pseudo-random weights.
  const weights = res.taps!.map((taps, b) =>
    taps.map((t, j): TapGrad => ({
      dq: tensor(t.q.shape, t.q.data.map((_, i) => Math.sin(i * 0.37 + j + 5 * b))),
      dk: tensor(t.k.shape, t.k.data.map((_, i) => Math.cos(i * 0.11 + 2 * j - b))),
    }))
  );
  const S = async (x: Tensor) => {
    const r = await den.run(x, 400, context, true);
    let s = 0;
    r.taps!.forEach((taps, b) =>
      taps.forEach((t, j) => {
        t.q.data.forEach((v, i) => (s += v * weights[b][j].dq.data[i]));
        t.k.data.forEach((v, i) => (s += v * weights[b][j].dk.data[i]));
      })
    );
    return s;
  };
  const g = await den.gradient(latents, 400, context, weights);
  const eps = 1e-2;
  for (const idx of [3, 77, 200, 256 + 45, 256 + 130]) {
    const plus = tensor(latents.shape, latents.data.slice()),
      minus = tensor(latents.shape, latents.data.slice());
    plus.data[idx] += eps;
    minus.data[idx] -= eps;
    const fd = ((await S(plus)) - (await S(minus))) / (2 * eps);
    const tol = 2e-2 * Math.max(1, Math.abs(fd));
    assert.ok(Math.abs(fd - g.data[idx]) < tol, `latent ${idx}: FD ${fd} vs VJP ${g.data[idx]}`);
  }
  await den.release();
});

Deno.test("joint: mergeJointGrads and jointBias put blocks where the ranges say", () => {
  const ranges: JointTokens = { text: [0, 2], image: [2, 5] };
  const g = (n: number, v: number) => tensor([1, n, 1], new Float32Array(n).fill(v));
  const m = mergeJointGrads({ dq: g(3, 1), dk: g(3, 2) }, { dq: g(3, 10), dk: g(2, 7) }, ranges, 5);
  assert.deepEqual([...m.dq.data], [0, 0, 11, 11, 11]);
  assert.deepEqual([...m.dk.data], [7, 7, 2, 2, 2]);
  const b = jointBias(tensor([1, 1, 3, 3], new Float32Array(9).fill(1)), null, ranges, 5)!;
  const rows = Array.from({ length: 5 }, (_, i) => [...b.data.slice(i * 5, i * 5 + 5)]);
  assert.deepEqual(rows, [[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 1], [
    0,
    0,
    1,
    1,
    1,
  ]]);
  assert.throws(
    () => jointBias(tensor([1, 1, 3, 4], new Float32Array(12)), null, ranges, 5),
    /self block/,
  );
  assert.equal(jointBias(null, undefined, ranges, 5), null);
});

Deno.test("joint: the config fallback marks cores the graph does not show", () => {
  const { model } = load("dit_tiny.onnx");
  const plain = findAttention(model, { joint: { latent: [] } }); // no latent: nothing from the graph
  assert.ok(plain.every((c) => c.joint === undefined));
  const marked = findAttention(model, {
    joint: { latent: [], textFirst: true, blocks: ["double", "double", "single"] },
  });
  assert.deepEqual(marked.map((c) => [c.joint?.block, c.joint?.source]), [
    ["double", "config"],
    ["double", "config"],
    ["single", "config"],
  ]);
  assert.throws(() => findAttention(model, { joint: { latent: ["nope"] } }), /latent/);
  assert.throws(
    () => findAttention(model, { joint: { latent: [], textFirst: true, blocks: ["double"] } }),
    /blocks/,
  );
});
