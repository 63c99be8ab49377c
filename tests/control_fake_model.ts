/**
 * A tiny pure-TypeScript diffusion model for control tests: a 1×4×4 latent, one self- and one
 * cross-attention layer whose queries are `[x_p, 1]` (x the latent pixel), so the attention maps
 * depend on the latent and `gradient` is exact (dL/dx_p = dq[p][0] + dk_self[p][0]). Every
 * denoise call is recorded (with its bias), and the output is 0.1·x.
 *
 * @module
 */
import type { AttentionTap, TapGrad } from "../lib/attention/types.ts";
import type { AttentionBias, DiffusionModel } from "../lib/runtime/model.ts";
import { wordTokenizer } from "../lib/prompt/word_tokenizer.ts";
import { type Tensor, tensor } from "../lib/tensor.ts";

/** The vocabulary: prompts like "a red circle and a blue square". */
export const FAKE_VOCAB: string[] = [
  "<pad>",
  "<sot>",
  "<eot>",
  "a",
  "and",
  "red",
  "blue",
  "circle",
  "square",
];

/** One recorded denoise call. */
export interface FakeCall {
  batch: number;
  timestep: number;
  taps: boolean;
  bias?: AttentionBias;
}

/** The fake model and its call record. */
export function fakeModel(): { model: DiffusionModel; calls: FakeCall[] } {
  const L = 10, D = 2, S = 4;
  const tokenizer = wordTokenizer(FAKE_VOCAB, { maxLength: L, sot: 1, eot: 2, pad: 0 });
  const calls: FakeCall[] = [];
  const model: DiffusionModel = {
    info: {
      name: "fake",
      latentShape: [1, S, S],
      imageSize: [S, S],
      scaleFactor: 1,
      trainSteps: 1000,
      betaSchedule: { kind: "scaled_linear", betaStart: 0.00085, betaEnd: 0.012 },
      prediction: "epsilon",
      nouns: ["circle", "square"],
      attributes: ["red", "blue"],
    },
    tokenizer,
    encodeText(prompts) {
      const out = new Float32Array(prompts.length * L * D);
      prompts.forEach((p, b) => {
        const ids = tokenizer.tokenize(p).ids;
        ids.forEach((id, j) => {
          // Token embeddings on a circle, so different tokens prefer different latent values.
          out[(b * L + j) * D] = 2 * Math.cos(id);
          out[(b * L + j) * D + 1] = 2 * Math.sin(id);
        });
      });
      return Promise.resolve(tensor([prompts.length, L, D], out));
    },
    denoise(latents, timestep, context, opts) {
      const b = latents.shape[0];
      calls.push({ batch: b, timestep, taps: opts?.taps ?? false, bias: opts?.bias });
      const out = tensor(latents.shape, latents.data.map((v) => 0.1 * v));
      if (!opts?.taps) return Promise.resolve({ out });
      const n = S * S;
      const taps: AttentionTap[][] = [];
      for (let i = 0; i < b; i++) {
        const q = new Float32Array(n * D);
        for (let p = 0; p < n; p++) {
          q[p * D] = latents.data[i * n + p];
          q[p * D + 1] = 1;
        }
        const qt = tensor([1, n, D], q);
        const k = tensor([1, L, D], context.data.slice(i * L * D, (i + 1) * L * D));
        taps.push([
          { kind: "self", q: qt, k: qt, size: [S, S] },
          { kind: "cross", q: qt, k, size: [S, S] },
        ]);
      }
      return Promise.resolve({ out, taps });
    },
    gradient(latents, _t, _c, tapGrads: readonly TapGrad[][]) {
      const n = S * S;
      const g = new Float32Array(latents.data.length);
      tapGrads.forEach((items, i) => {
        const [self, cross] = items;
        for (let p = 0; p < n; p++) {
          g[i * n + p] = self.dq.data[p * D] + self.dk.data[p * D] + cross.dq.data[p * D];
        }
      });
      return Promise.resolve(tensor(latents.shape, g));
    },
    decode(latents: Tensor) {
      const [b, , h, w] = latents.shape;
      const img = new Float32Array(b * 3 * h * w);
      for (let i = 0; i < b; i++) {
        for (let c = 0; c < 3; c++) {
          for (let p = 0; p < h * w; p++) {
            img[(i * 3 + c) * h * w + p] = 1 / (1 + Math.exp(-latents.data[i * h * w + p]));
          }
        }
      }
      return Promise.resolve(tensor([b, 3, h, w], img));
    },
    release: () => Promise.resolve(),
  };
  return { model, calls };
}
