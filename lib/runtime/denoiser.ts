/**
 * An ONNX denoiser with attention taps: the graph is read, every attention core found by
 * structure (`lib/hooks`), Q and K added as outputs, and one onnxruntime session made. Each call
 * returns the model output and, when asked, the taps reshaped into {@link AttentionTap}s per
 * batch item. Works for any UNet/DiT graph the hooks recognise, not only ours.
 *
 * @module
 */
import { decodeModel, encodeModel } from "../onnx/proto.ts";
import { createSession, type CreateSessionOptions, ort, type Session } from "../onnx/ort.ts";
import { findAttention } from "../hooks/find.ts";
import { resolveScale, tapAttention, type TapInfo } from "../hooks/tap.ts";
import type { Model } from "../onnx/types.ts";
import type { Tensor as OrtTensor } from "onnxruntime-web/webgpu";
import { AttnkitError, check } from "../errors.ts";
import { expectFinite, sizeOf, type Tensor, tensor } from "../tensor.ts";
import type { AttentionTap } from "../attention/types.ts";

/** Input and output names of a denoiser graph. */
export interface DenoiserIo {
  sample: string;
  timestep: string;
  context: string;
  output: string;
}

/** A denoiser session with its taps. */
export interface Denoiser {
  /** The taps' descriptions, one per attention core, in graph order. */
  readonly taps: readonly TapInfo[];
  /** Runs the graph once. */
  run(latents: Tensor, timestep: number, context: Tensor, wantTaps: boolean): Promise<{
    out: Tensor;
    taps?: AttentionTap[][];
  }>;
  /** Releases the session. */
  release(): Promise<void>;
}

function timestepTensor(model: Model, name: string, t: number, batch: number): OrtTensor {
  const input = model.graph.input.find((i) => i.name === name);
  const elem = input?.type?.tensorType?.elemType ?? 1;
  const dims = input?.type?.tensorType?.shape?.dim ?? [];
  const shape = dims.length === 0 ? [] : [batch];
  const n = dims.length === 0 ? 1 : batch;
  if (elem === 7) return new ort.Tensor("int64", new BigInt64Array(n).fill(BigInt(Math.round(t))), shape);
  if (elem === 6) return new ort.Tensor("int32", new Int32Array(n).fill(Math.round(t)), shape);
  return new ort.Tensor("float32", new Float32Array(n).fill(t), shape);
}

function floatData(v: OrtTensor, what: string): Float32Array {
  if (v.type !== "float32") throw new AttnkitError(what, `expected float32 output, got ${v.type}`);
  return v.data as Float32Array;
}

/** Splits a [B, h, N, d] tap output into per-item [h, N, d] tensors. */
function perItem(v: OrtTensor, what: string): Tensor[] {
  const [b, h, n, d] = v.dims as number[];
  const data = floatData(v, what);
  const step = h * n * d;
  return Array.from({ length: b }, (_, i) => tensor([h, n, d], data.subarray(i * step, (i + 1) * step)));
}

/** Spatial size of a layer with `n` tokens, for a latent of `hw` (same aspect ratio). */
export function layerSize(n: number, hw: readonly [number, number]): [number, number] {
  const ratio = Math.sqrt((hw[0] * hw[1]) / n);
  const h = Math.round(hw[0] / ratio), w = Math.round(hw[1] / ratio);
  check(h * w === n, "taps", `a layer with ${n} tokens does not fit a ${hw[0]}×${hw[1]} latent grid`);
  return [h, w];
}

/** Loads a denoiser from ONNX bytes, tapping Q and K of every attention core. */
export async function loadDenoiser(
  bytes: Uint8Array,
  io: DenoiserIo,
  opts: CreateSessionOptions & { source?: string } = {},
): Promise<Denoiser> {
  const source = opts.source ?? "unet.onnx";
  const graph = decodeModel(bytes, source);
  const cores = findAttention(graph, { conditioning: [io.context] });
  const tapped = tapAttention(graph, cores, { qk: true });
  const session: Session = await createSession(encodeModel(tapped.model), { ...opts, source });
  const tapNames = tapped.taps.flatMap((t) => [t.q!, t.k!]);
  return {
    taps: tapped.taps,
    async run(latents, timestep, context, wantTaps) {
      expectFinite(latents, "latents");
      const [b, , lh, lw] = latents.shape;
      const feeds: Record<string, OrtTensor> = {
        [io.sample]: new ort.Tensor("float32", latents.data, [...latents.shape]),
        [io.timestep]: timestepTensor(graph, io.timestep, timestep, b),
        [io.context]: new ort.Tensor("float32", context.data, [...context.shape]),
      };
      const fetches = wantTaps ? [io.output, ...tapNames] : [io.output];
      const res = await session.run(feeds, fetches);
      const outT = res[io.output];
      const out = tensor(outT.dims as number[], floatData(outT, io.output).slice());
      if (!wantTaps) return { out };
      const items: AttentionTap[][] = Array.from({ length: b }, () => []);
      for (const tap of tapped.taps) {
        const qs = perItem(res[tap.q!], tap.q!);
        const ks = perItem(res[tap.k!], tap.k!);
        const [, , n, d] = res[tap.q!].dims as number[];
        const size = layerSize(n, [lh, lw]);
        // accumulateMaps assumes 1/√d; fold any other scale into q.
        const scale = resolveScale(tap, d);
        const fix = scale * Math.sqrt(d);
        for (let i = 0; i < b; i++) {
          let q = qs[i];
          if (Math.abs(fix - 1) > 1e-6) q = tensor(q.shape, q.data.map((x) => x * fix));
          items[i].push({ kind: tap.kind, q, k: ks[i], size });
        }
      }
      return { out, taps: items };
    },
    async release() {
      await session.release();
    },
  };
}

/** Checks that a tensor has `n` elements per batch item for `b` items. */
export function expectBatch(t: Tensor, b: number, argument: string): void {
  check(t.shape[0] === b, argument, `expected batch ${b}, got shape [${t.shape}]`);
  check(sizeOf(t.shape) === t.data.length, argument, "data length does not match its shape");
}
