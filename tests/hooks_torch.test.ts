/**
 * Attention hooks on real PyTorch 1.13 exports (tests/fixtures/make_hook_fixtures.py): a tiny
 * transformer block with self- and cross-attention, once as bmm/softmax in the [B·heads, N, d]
 * layout with a scale computed at run time from Shape, once in the torch-2 SDPA export pattern.
 */
import assert from "node:assert/strict";
import { decodeModel, encodeModel } from "../lib/onnx/proto.ts";
import { createSession, ort, type OrtTensor } from "../lib/onnx/ort.ts";
import type { Model } from "../lib/onnx/types.ts";
import { findAttention } from "../lib/hooks/find.ts";
import { resolveScale, tapAttention } from "../lib/hooks/tap.ts";
import { biasAttention } from "../lib/hooks/bias.ts";

const fixtures = new URL("./fixtures/", import.meta.url);
const io = JSON.parse(Deno.readTextFileSync(new URL("block_io.json", fixtures))) as Record<
  string,
  number[]
>;
const B = 2, N = 16, L = 6, C = 32, CT = 24, H = 2, D = 16;
const sample = Float32Array.from(io.sample);
const ehs = Float32Array.from(io.encoder_hidden_states);

type Outputs = Record<string, { data: Float32Array; dims: readonly number[] }>;

async function run(m: Model, feeds: Record<string, [Float32Array, number[]]>): Promise<Outputs> {
  const session = await createSession(encodeModel(m));
  const input: Record<string, OrtTensor> = {};
  for (const [k, [data, dims]] of Object.entries(feeds)) {
    input[k] = new ort.Tensor("float32", data, dims);
  }
  const res = await session.run(input);
  const out: Outputs = {};
  for (const [k, t] of Object.entries(res)) out[k] = { data: t.data as Float32Array, dims: t.dims };
  await session.release();
  return out;
}

function close(a: Float32Array, b: Float32Array, tol: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  assert.ok(worst <= tol, `${what}: max |diff| ${worst} > ${tol}`);
}

/** Head mean of softmax(Q Kᵀ · scale) for Q [b, h, nq, d], K [b, h, nk, d]. */
function meanProbs(
  q: Float32Array,
  k: Float32Array,
  dims: readonly number[],
  nk: number,
  scale: number,
) {
  const [b, h, nq, d] = dims;
  const out = new Float32Array(b * nq * nk);
  for (let bi = 0; bi < b; bi++) {
    for (let hi = 0; hi < h; hi++) {
      for (let i = 0; i < nq; i++) {
        const row = new Float64Array(nk);
        for (let j = 0; j < nk; j++) {
          let s = 0;
          for (let c = 0; c < d; c++) {
            s += q[((bi * h + hi) * nq + i) * d + c] * k[((bi * h + hi) * nk + j) * d + c];
          }
          row[j] = s * scale;
        }
        const mx = Math.max(...row);
        let z = 0;
        for (let j = 0; j < nk; j++) z += Math.exp(row[j] - mx);
        for (let j = 0; j < nk; j++) out[(bi * nq + i) * nk + j] += Math.exp(row[j] - mx) / z / h;
      }
    }
  }
  return out;
}

const feeds = (): Record<string, [Float32Array, number[]]> => ({
  sample: [sample, [B, N, C]],
  encoder_hidden_states: [ehs, [B, L, CT]],
});

const cases = {
  bmm: { layout: "(bh)nd", scale: 1, factors: 1 },
  // sqrt(1/sqrt(16)) folded into a constant on each side: 0.5 · 0.5.
  sdpa: { layout: "bhnd", scale: 0.25, factors: 0 },
} as const;

for (const [style, want] of Object.entries(cases)) {
  Deno.test(`hooks on the PyTorch export block_${style}.onnx`, async (t) => {
    const name = `block_${style}.onnx`;
    const m = decodeModel(Deno.readFileSync(new URL(name, fixtures)), name);
    const original = await run(m, feeds());

    await t.step("onnxruntime-web reproduces PyTorch", () => {
      close(original.out_sample.data, Float32Array.from(io[`out_${style}`]), 1e-4, "out_sample");
    });

    const cores = findAttention(m);
    await t.step("two cores: self then cross, 2 heads", () => {
      assert.deepEqual(cores.map((c) => c.kind), ["self", "cross"]);
      for (const c of cores) {
        assert.equal(c.layout, want.layout);
        assert.equal(c.heads, H);
        assert.ok(Math.abs((c.scale ?? NaN) - want.scale) < 1e-6, `scale ${c.scale}`);
        assert.equal(c.scaleFactors.length, want.factors);
      }
    });

    await t.step("tapped Q, K reproduce the tapped probabilities", async () => {
      const { model: tapped, taps } = tapAttention(m, cores, { qk: true, probs: true });
      const out = await run(tapped, feeds());
      close(out.out_sample.data, original.out_sample.data, 1e-5, "output unchanged");
      for (const [i, tap] of taps.entries()) {
        const q = out[tap.q!];
        const nk = i === 0 ? N : L;
        assert.deepEqual(q.dims, [B, H, N, D]);
        assert.deepEqual(out[tap.k!].dims, [B, H, nk, D]);
        const sv = tap.scaleOutput ? out[tap.scaleOutput].data[0] : undefined;
        const scale = resolveScale(tap, D, sv);
        assert.ok(Math.abs(scale - 1 / Math.sqrt(D)) < 1e-6, `scale ${scale}`);
        close(
          out[tap.probs!].data,
          meanProbs(q.data, out[tap.k!].data, q.dims, nk, scale),
          1e-5,
          `core ${i}`,
        );
      }
    });

    await t.step("bias: zeros change nothing, -1e4 drops a text token", async () => {
      const { model: biased, biasInputs } = biasAttention(m, cores);
      const zeros = {
        ...feeds(),
        [biasInputs[0]]: [new Float32Array(N * N), [1, 1, N, N]],
        [biasInputs[1]]: [new Float32Array(N * L), [1, 1, N, L]],
      } as Record<string, [Float32Array, number[]]>;
      close((await run(biased, zeros)).out_sample.data, original.out_sample.data, 1e-5, "zeros");
      const drop = 2;
      const mask = new Float32Array(N * L);
      for (let i = 0; i < N; i++) mask[i * L + drop] = -1e4;
      const masked = await run(biased, { ...zeros, [biasInputs[1]]: [mask, [1, 1, N, L]] });
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
      close(masked.out_sample.data, ref.out_sample.data, 1e-4, "dropped token");
    });
  });
}
