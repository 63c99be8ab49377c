/**
 * ISAC Eq. 1-2 from Q/K taps on onnxruntime's CPU kernels (MLAS GEMM and Softmax, through
 * onnxruntime-node when it loads, else onnxruntime-web's wasm build), for users who bring only Q
 * and K: the same maps as the TypeScript reference `accumulateMaps` (lib/attention/accumulate.ts,
 * where the layout choices are explained), several times faster at Stable Diffusion scale.
 *
 * Memory: query rows go through the runtime one block at a time, sized so that one block's
 * per-head scores stay near `blockBytes` (default 32 MiB), and each block's head sum is added into
 * the output maps at once; no tap's full `[heads, Nq, Nk]` probabilities are ever held (they
 * would be 512 MiB for one 64×64 SD self layer).
 *
 * @module
 */
import { initializer, model, node, valueInfo } from "../onnx/build.ts";
import {
  createSession,
  type ExecutionProvider,
  fastestCpuProvider,
  ort,
  type Session,
} from "../onnx/ort.ts";
import { encodeModel } from "../onnx/proto.ts";
import { tensor } from "../tensor.ts";
import { columnSource } from "./accumulate.ts";
import { planTaps } from "./plan.ts";
import type { AttentionMaps, AttentionTap } from "./types.ts";

/** Options of {@link accumulateMapsOrt}. */
export interface OrtMapsOptions {
  /** Execution provider (default: onnxruntime-node's CPU provider when it loads, else wasm). */
  provider?: "node" | "wasm";
  /** Target size of one row block's per-head scores, bytes (default 32 MiB). */
  blockBytes?: number;
}

const sessions = new Map<string, Promise<Session>>();

/** softmax(q kᵀ) summed over heads for a block of rows: q `[heads, R, d]` (pre-scaled), k `[heads, Nk, d]` → `[R, Nk]`. */
function headSumGraph(heads: number, nk: number, d: number): Uint8Array {
  return encodeModel(model({
    inputs: [valueInfo("q", [heads, "rows", d]), valueInfo("k", [heads, nk, d])],
    outputs: [valueInfo("p", ["rows", nk])],
    nodes: [
      node("Transpose", ["k"], ["kt"], { perm: [0, 2, 1] }),
      node("MatMul", ["q", "kt"], ["s"]),
      node("Softmax", ["s"], ["pr"], { axis: -1 }),
      node("ReduceSum", ["pr", "axes"], ["p"], { keepdims: 0 }),
    ],
    initializers: [initializer("axes", [1], new BigInt64Array([0n]))],
    opset: 17,
  }));
}

function sessionFor(
  provider: ExecutionProvider,
  heads: number,
  nk: number,
  d: number,
): Promise<Session> {
  const key = `${provider}:${heads}:${nk}:${d}`;
  let s = sessions.get(key);
  if (!s) {
    s = createSession(headSumGraph(heads, nk, d), {
      executionProviders: [provider],
      threads: 1,
      source: `attention head sum [${heads}, rows, ${nk}]`,
    });
    s.catch(() => sessions.delete(key));
    sessions.set(key, s);
  }
  return s;
}

/**
 * Accumulates the taps into one self map `[HW, HW]` and one cross map `[HW, L]` (Eq. 1-2), the
 * same result as `accumulateMaps` within float32 rounding. Throws the same `AttnkitError`s for
 * bad taps (naming `taps[i]`), and one naming the model when onnxruntime cannot run.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { maps as mapsApi, tensor } from "@attnkit/attnkit";
 * const q = tensor([2, 16, 8], new Float32Array(2 * 16 * 8).fill(0.1));
 * const k = tensor([2, 16, 8], new Float32Array(2 * 16 * 8).fill(0.2));
 * const maps = await mapsApi.accumulateMapsOrt([{ kind: "self", q, k, size: [4, 4] }]);
 * console.log(maps.self.shape); // [16, 16]
 * assert(maps.self.shape.join() === "16,16");
 * ```
 */
export async function accumulateMapsOrt(
  taps: readonly AttentionTap[],
  opts: OrtMapsOptions = {},
): Promise<AttentionMaps> {
  const plan = planTaps(taps);
  const provider = opts.provider ?? await fastestCpuProvider();
  const blockBytes = opts.blockBytes ?? 32 * 2 ** 20;
  const hw = plan.hw;
  const [bigH, bigW] = plan.size;
  const selfCols = plan.selfHeads > 0 ? hw : 0;
  const self = new Float32Array(hw * selfCols);
  const cross = new Float32Array(hw * plan.textLength);
  for (const tap of taps) {
    const [heads, nq, d] = tap.q.shape;
    const nk = tap.k.shape[1];
    const [h, w] = tap.size;
    const dy = bigH / h, dx = bigW / w;
    const isSelf = tap.kind === "self";
    const spread = isSelf ? dy * dx : 1;
    const norm = 1 / ((isSelf ? plan.selfHeads : plan.crossHeads) * spread);
    const out = isSelf ? self : cross;
    const outCols = isSelf ? selfCols : plan.textLength;
    const cols = isSelf && spread > 1 ? columnSource(tap.size, plan.size) : null;
    const session = await sessionFor(provider, heads, nk, d);
    const k = new ort.Tensor("float32", tap.k.data, [heads, nk, d]);
    const rows = Math.max(1, Math.min(nq, Math.floor(blockBytes / (4 * heads * nk))));
    const scale = 1 / Math.sqrt(d);
    const qBlock = new Float32Array(heads * rows * d);
    for (let row0 = 0; row0 < nq; row0 += rows) {
      const count = Math.min(rows, nq - row0);
      for (let head = 0; head < heads; head++) {
        const src = (head * nq + row0) * d;
        const dst = head * count * d;
        for (let i = 0; i < count * d; i++) qBlock[dst + i] = tap.q.data[src + i] * scale;
      }
      const q = new ort.Tensor("float32", qBlock.subarray(0, heads * count * d), [heads, count, d]);
      const res = await session.run({ q, k });
      const p = res.p.data as Float32Array;
      for (let r = 0; r < count; r++) {
        const pix = row0 + r;
        const y = Math.floor(pix / w);
        const x = pix - y * w;
        const src = r * nk;
        for (let a = 0; a < dy; a++) {
          for (let b = 0; b < dx; b++) {
            const base = ((y * dy + a) * bigW + x * dx + b) * outCols;
            if (cols) {
              for (let c = 0; c < outCols; c++) out[base + c] += p[src + cols[c]] * norm;
            } else {
              for (let c = 0; c < outCols; c++) out[base + c] += p[src + c] * norm;
            }
          }
        }
      }
    }
  }
  return {
    self: tensor([hw, selfCols], self),
    cross: tensor([hw, plan.textLength], cross),
    size: [bigH, bigW],
  };
}
