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
import type { Tensor as OrtTensor } from "npm:onnxruntime-web@1.30.0/webgpu";
import { AttnkitError, check } from "../errors.ts";
import { expectFinite, sizeOf, type Tensor, tensor } from "../tensor.ts";
import type { AttentionTap, TapGrad } from "../attention/types.ts";
import { vjpGraph } from "../onnx/autodiff/vjp.ts";
import { biasAttention } from "../hooks/bias.ts";
import {
  jointBias,
  type JointOptions,
  jointRanges,
  mergeJointGrads,
  splitJointTap,
} from "../hooks/joint.ts";
import type { AttentionBias } from "./model.ts";

/** Input and output names of a denoiser graph. */
export interface DenoiserIo {
  /** Name of the noisy-latent input `[B, C, h, w]`. */
  sample: string;
  /** Name of the timestep input (scalar or `[B]`; float or integer). */
  timestep: string;
  /** Name of the text-conditioning input `[B, L, D]` (encoder hidden states). */
  context: string;
  /** Name of the model-output tensor (noise or velocity prediction, `[B, C, h, w]`). */
  output: string;
}

/**
 * Which core tap an {@link AttentionTap} comes from: a whole core, or the SA (`"self"`) or CA
 * (`"cross"`) block of a joint-attention core (rows renormalised; see `lib/hooks/joint.ts`).
 */
export interface TapPart {
  /** Index into {@link Denoiser.taps}. */
  tap: number;
  /** The whole core, or one block of a joint core. */
  part: "all" | "self" | "cross";
}

/** A denoiser session with its taps. */
export interface Denoiser {
  /** The taps' descriptions, one per attention core, in graph order. */
  readonly taps: readonly TapInfo[];
  /**
   * What each returned {@link AttentionTap} (and each bias / tap-gradient entry) is, in order:
   * one entry per ordinary core, two (SA then CA) per joint-attention core.
   */
  readonly parts: readonly TapPart[];
  /**
   * Runs the graph once. With a `bias` (one entry per tap, see {@link AttentionBias}) it runs a
   * second graph with a bias input per attention core, built on first use, so a model that is
   * never steered pays nothing for it.
   */
  run(
    latents: Tensor,
    timestep: number,
    context: Tensor,
    wantTaps: boolean,
    bias?: AttentionBias,
  ): Promise<{
    out: Tensor;
    taps?: AttentionTap[][];
  }>;
  /**
   * dL/dlatents by reverse mode through the graph (a VJP graph built on first use), given
   * dL/dq and dL/dk of every tap for every batch item (as {@link run} returned them).
   */
  gradient(
    latents: Tensor,
    timestep: number,
    context: Tensor,
    tapGrads: readonly TapGrad[][],
  ): Promise<Tensor>;
  /** Releases the session(s). */
  release(): Promise<void>;
}

function timestepTensor(model: Model, name: string, t: number, batch: number): OrtTensor {
  const input = model.graph.input.find((i) => i.name === name);
  const elem = input?.type?.tensorType?.elemType ?? 1;
  const dims = input?.type?.tensorType?.shape?.dim ?? [];
  const shape = dims.length === 0 ? [] : [batch];
  const n = dims.length === 0 ? 1 : batch;
  if (elem === 7) {
    return new ort.Tensor("int64", new BigInt64Array(n).fill(BigInt(Math.round(t))), shape);
  }
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
  return Array.from(
    { length: b },
    (_, i) => tensor([h, n, d], data.subarray(i * step, (i + 1) * step)),
  );
}

/** Spatial size of a layer with `n` tokens, for a latent of `hw` (same aspect ratio). */
export function layerSize(n: number, hw: readonly [number, number]): [number, number] {
  const ratio = Math.sqrt((hw[0] * hw[1]) / n);
  const h = Math.round(hw[0] / ratio), w = Math.round(hw[1] / ratio);
  check(
    h * w === n,
    "taps",
    `a layer with ${n} tokens does not fit a ${hw[0]}×${hw[1]} latent grid`,
  );
  return [h, w];
}

/** Loads a denoiser from ONNX bytes, tapping Q and K of every attention core. */
export async function loadDenoiser(
  bytes: Uint8Array,
  io: DenoiserIo,
  opts: CreateSessionOptions & { source?: string; joint?: JointOptions } = {},
): Promise<Denoiser> {
  const source = opts.source ?? "unet.onnx";
  const graph = decodeModel(bytes, source);
  const cores = findAttention(graph, {
    conditioning: [io.context],
    joint: { latent: [io.sample], ...opts.joint },
  });
  const tapped = tapAttention(graph, cores, { qk: true });
  const jointOf = (j: number) => cores[tapped.taps[j].core].joint;
  const parts: TapPart[] = tapped.taps.flatMap((_t, j): TapPart[] =>
    jointOf(j) ? [{ tap: j, part: "self" }, { tap: j, part: "cross" }] : [{ tap: j, part: "all" }]
  );
  const session: Session = await createSession(encodeModel(tapped.model), { ...opts, source });
  const tapNames = tapped.taps.flatMap((
    t,
  ) => [t.q!, t.k!, ...(t.scaleOutput ? [t.scaleOutput] : [])]);
  // q is rescaled by `fixes[i]` before it reaches accumulateMaps (models whose scale is not 1/√d).
  const fixes: number[] = tapped.taps.map(() => 1);
  let vjp: { session: Session; cot: string[]; out: string } | undefined;
  // The steering graph: the tapped graph plus one bias input per core (tap j's is `inputs[j]`).
  let biased: { session: Session; inputs: string[] } | undefined;
  const biasFeeds = async (
    bias: AttentionBias,
    textTokens: number,
  ): Promise<[Session, Record<string, OrtTensor>]> => {
    if (!biased) {
      const built = biasAttention(tapped.model, cores);
      biased = {
        session: await createSession(encodeModel(built.model), {
          ...opts,
          source: `${source} (bias)`,
        }),
        inputs: tapped.taps.map((t) => built.biasInputs[t.core]),
      };
    }
    const feeds: Record<string, OrtTensor> = {};
    bias.forEach((b, j) => {
      if (b) {
        const want = "[B, heads, Nq, Nk] (broadcastable)";
        check(b.shape.length === 4, `bias[${j}]`, `expected ${want}, got [${b.shape}]`);
        expectFinite(b, `bias[${j}]`);
      }
    });
    const perCore = tapped.taps.map((_t, j) => {
      const at = parts.findIndex((p) => p.tap === j);
      const joint = jointOf(j);
      if (!joint) return bias[at];
      // The joint sequence is the image tokens (rows of either block) plus the L text tokens.
      const [sa, ca] = [bias[at], bias[at + 1]];
      const ni = (sa ?? ca)?.shape[2];
      if (ni === undefined) return null;
      const n = ni + textTokens;
      return jointBias(sa, ca, jointRanges(joint, n, textTokens), n);
    });
    perCore.forEach((b, j) => {
      feeds[biased!.inputs[j]] = b
        ? new ort.Tensor("float32", b.data, [...b.shape])
        : new ort.Tensor("float32", new Float32Array(1), [1, 1, 1, 1]);
    });
    return [biased.session, feeds];
  };
  const feedsOf = (
    latents: Tensor,
    timestep: number,
    context: Tensor,
  ): Record<string, OrtTensor> => ({
    [io.sample]: new ort.Tensor("float32", latents.data, [...latents.shape]),
    [io.timestep]: timestepTensor(graph, io.timestep, timestep, latents.shape[0]),
    [io.context]: new ort.Tensor("float32", context.data, [...context.shape]),
  });
  return {
    taps: tapped.taps,
    parts,
    async run(latents, timestep, context, wantTaps, bias) {
      expectFinite(latents, "latents");
      const [b, , lh, lw] = latents.shape;
      const feeds = feedsOf(latents, timestep, context);
      const fetches = wantTaps ? [io.output, ...tapNames] : [io.output];
      let use = session;
      check(
        bias === undefined || bias.length === parts.length,
        "bias",
        () => `expected one entry per tap (${parts.length}), got ${bias!.length}`,
      );
      if (bias && bias.some((x) => x)) {
        const [s, extra] = await biasFeeds(bias, context.shape[1]);
        use = s;
        Object.assign(feeds, extra);
      }
      const res = await use.run(feeds, fetches);
      const outT = res[io.output];
      const out = tensor(outT.dims as number[], floatData(outT, io.output).slice());
      if (!wantTaps) return { out };
      const items: AttentionTap[][] = Array.from({ length: b }, () => []);
      for (const tap of tapped.taps) {
        const qs = perItem(res[tap.q!], tap.q!);
        const ks = perItem(res[tap.k!], tap.k!);
        const [, , n, d] = res[tap.q!].dims as number[];
        const joint = cores[tap.core].joint;
        const ranges = joint ? jointRanges(joint, n, context.shape[1]) : undefined;
        const size = layerSize(ranges ? ranges.image[1] - ranges.image[0] : n, [lh, lw]);
        // accumulateMaps assumes 1/√d; fold any other scale into q.
        const scaleValue = tap.scaleOutput
          ? floatData(res[tap.scaleOutput], tap.scaleOutput)[0]
          : undefined;
        const scale = resolveScale(tap, d, scaleValue);
        const fix = scale * Math.sqrt(d);
        fixes[tapped.taps.indexOf(tap)] = fix;
        for (let i = 0; i < b; i++) {
          let q = qs[i];
          if (Math.abs(fix - 1) > 1e-6) q = tensor(q.shape, q.data.map((x) => x * fix));
          if (ranges) items[i].push(...splitJointTap(q, ks[i], ranges, size));
          else items[i].push({ kind: tap.kind, q, k: ks[i], size });
        }
      }
      return { out, taps: items };
    },
    async gradient(latents, timestep, context, tapGrads) {
      const b = latents.shape[0];
      check(
        tapGrads.length === b,
        "tapGrads",
        `expected one list per batch item (${b}), got ${tapGrads.length}`,
      );
      if (!vjp) {
        const names = tapped.taps.flatMap((t) => [t.q!, t.k!]);
        const built = vjpGraph(tapped.model, { wrt: [io.sample], taps: names });
        vjp = {
          session: await createSession(encodeModel(built.model), {
            ...opts,
            source: `${source} (VJP)`,
          }),
          cot: built.cotangentInputs,
          out: built.gradOutputs[0],
        };
      }
      const feeds = feedsOf(latents, timestep, context);
      // One gradient per core: a joint core's SA and CA gradients merge into its q and k.
      const perCore: TapGrad[][] = tapGrads.map((item, i) => {
        check(
          item.length === parts.length,
          `tapGrads[${i}]`,
          `expected one entry per tap (${parts.length}), got ${item.length}`,
        );
        return tapped.taps.map((_t, j) => {
          const at = parts.findIndex((p) => p.tap === j);
          const joint = jointOf(j);
          if (!joint) return item[at];
          const n = item[at].dq.shape[1] + context.shape[1];
          return mergeJointGrads(
            item[at],
            item[at + 1],
            jointRanges(joint, n, context.shape[1]),
            n,
          );
        });
      });
      tapped.taps.forEach((_tap, j) => {
        for (
          const [which, name] of [["dq", vjp!.cot[2 * j]], ["dk", vjp!.cot[2 * j + 1]]] as const
        ) {
          const first = perCore[0][j][which];
          const per = first.data.length;
          const data = new Float32Array(per * b);
          for (let i = 0; i < b; i++) {
            const g = perCore[i][j][which];
            check(
              g.data.length === per,
              `tapGrads[${i}][${j}].${which}`,
              `expected ${per} values, got ${g.data.length}`,
            );
            const f = which === "dq" ? fixes[j] : 1;
            for (let p = 0; p < per; p++) data[i * per + p] = g.data[p] * f;
          }
          feeds[name] = new ort.Tensor("float32", data, [b, ...first.shape]);
        }
      });
      const res = await vjp.session.run(feeds, [vjp.out]);
      const g = res[vjp.out];
      return tensor(g.dims as number[], floatData(g, vjp.out).slice());
    },
    async release() {
      await session.release();
      if (vjp) await vjp.session.release();
      if (biased) await biased.session.release();
    },
  };
}

/** Checks that a tensor has `n` elements per batch item for `b` items. */
export function expectBatch(t: Tensor, b: number, argument: string): void {
  check(t.shape[0] === b, argument, `expected batch ${b}, got shape [${t.shape}]`);
  check(sizeOf(t.shape) === t.data.length, argument, "data length does not match its shape");
}
