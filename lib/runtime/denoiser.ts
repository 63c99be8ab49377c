/**
 * An ONNX denoiser with attention taps: the graph is read, every attention core found by
 * structure (`lib/hooks`), Q and K added as outputs, and one onnxruntime session made. Each call
 * returns the model output and, when asked, the taps reshaped into {@link AttentionTap}s per
 * batch item. Works for any UNet/DiT graph the hooks recognise, not only ours, in float32,
 * float16 or bfloat16: the session takes and returns float32 (Casts at the graph's edges) and the
 * taps are float32, so everything outside the model computes in float32.
 *
 * A model whose attention cannot all be tapped is refused here, at load, with one error listing
 * the layers found and skipped (see `lib/hooks/report.ts`), not later by a control.
 *
 * @module
 */
import { decodeModel, encodeModel } from "../onnx/proto.ts";
import { createSession, type CreateSessionOptions, ort, type Session } from "../onnx/ort.ts";
import { scanAttention } from "../hooks/find.ts";
import { type AttentionNeed, requireAttention } from "../hooks/report.ts";
import { upcastToFloat32, withFloat32Io } from "../onnx/float_io.ts";
import { resolveScale, tapAttention, type TapInfo } from "../hooks/tap.ts";
import type { Model, ValueInfoProto } from "../onnx/types.ts";
import type { Tensor as OrtTensor } from "npm:onnxruntime-web@1.30.0/webgpu";
import { AttnkitError, check } from "../errors.ts";
import { expectFinite, sizeOf, type Tensor, tensor } from "../tensor.ts";
import type {
  AttentionMaps,
  AttentionMapsGrad,
  AttentionTap,
  TapGrad,
} from "../attention/types.ts";
import { accumulateMapsAuto } from "../../kernels/accumulate_maps.ts";
import { type MapLayer, type MapsGraph, mapsGraph } from "../hooks/maps_graph.ts";
import { vjpGraph } from "../onnx/autodiff/vjp.ts";
import { splitVjp, type VjpHalves } from "../onnx/autodiff/split.ts";
import { biasAttention } from "../hooks/bias.ts";
import { lowerEinsum, lowerFusedAttention } from "../hooks/lower.ts";
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
   * True when maps (and their VJP) are made inside the graph: float32 graphs whose attention is
   * plain MatMul/Softmax. Otherwise `run` with `wantMaps` accumulates the maps from the taps and
   * {@link gradientFromMaps} refuses (use {@link gradient}).
   */
  readonly mapsInGraph: boolean;
  /**
   * What each returned {@link AttentionTap} (and each bias / tap-gradient entry) is, in order:
   * one entry per ordinary core, two (SA then CA) per joint-attention core.
   */
  readonly parts: readonly TapPart[];
  /**
   * Runs the graph once. With a `bias` (one entry per tap, see {@link AttentionBias}) it runs a
   * second graph with a bias input per attention core, built on first use, so a model that is
   * never steered pays nothing for it. With `wantMaps` it also returns every item's accumulated
   * maps (ISAC Eq. 1-2), made inside a third graph from the forward's own probabilities (see
   * `lib/hooks/maps_graph.ts`; built on first use per latent size); with a bias they are
   * accumulated from the biased graph's taps instead. `wantMaps = "grad"` runs the forward half
   * of the map graph's VJP instead and keeps what its backward reads, so that a
   * {@link gradientFromMaps} call on the same tensors runs only the backward.
   */
  run(
    latents: Tensor,
    timestep: number,
    context: Tensor,
    wantTaps: boolean,
    bias?: AttentionBias,
    wantMaps?: boolean | "grad",
  ): Promise<{
    out: Tensor;
    taps?: AttentionTap[][];
    maps?: AttentionMaps[];
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
  /**
   * dL/dlatents given dL/d(maps) of every batch item (the maps {@link run} returned with
   * `wantMaps`), through the VJP of the map graph: no Q/K cotangents, and only the part of the
   * forward up to the last attention layer is recomputed, or none of it when the last
   * {@link run} was asked for `"grad"` maps of these same tensors (latents, context, timestep).
   */
  gradientFromMaps(
    latents: Tensor,
    timestep: number,
    context: Tensor,
    mapGrads: readonly AttentionMapsGrad[],
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

/** Checks that the graph has the inputs and output `io` names (clear errors for a wrong file). */
function checkIo(graph: Model, io: DenoiserIo, source: string): void {
  const weights = new Set(graph.graph.initializer.map((t) => t.name));
  const inputs = graph.graph.input.map((v) => v.name).filter((n) => !weights.has(n));
  const outputs = graph.graph.output.map((v) => v.name);
  const list = (xs: string[]): string => xs.map((x) => JSON.stringify(x)).join(", ") || "none";
  for (const key of ["sample", "timestep", "context"] as const) {
    const name = io[key];
    if (typeof name !== "string" || !inputs.includes(name)) {
      throw new AttnkitError(
        source,
        `is not a denoiser with a ${key} input ${
          name === undefined ? "" : JSON.stringify(name) + " "
        }` +
          `(its inputs are ${
            list(inputs)
          }; a UNet takes sample, timestep and encoder_hidden_states)`,
      );
    }
  }
  if (typeof io.output !== "string" || !outputs.includes(io.output)) {
    throw new AttnkitError(
      source,
      `has no output ${JSON.stringify(io.output)} (its outputs are ${list(outputs)})`,
    );
  }
}

/** onnx.TensorProto.DataType.BFLOAT16. */
const BFLOAT16 = 16;

/**
 * The error to raise when a session fails: for a bfloat16 model, one that says why (onnxruntime's
 * CPU kernels, wasm and node, have no bfloat16 MatMul/Cast) and what to do; else `e` itself.
 */
function bfloat16Refusal(
  graph: Model,
  source: string,
  eps: readonly string[] | undefined,
  e: unknown,
): unknown {
  const g = graph.graph;
  const bf16 = g.initializer.some((t) => t.dataType === BFLOAT16) ||
    g.input.some((v) => v.type?.tensorType?.elemType === BFLOAT16);
  if (!bf16) return e;
  const why = e instanceof Error ? e.message : String(e);
  return new AttnkitError(
    source,
    `a bfloat16 denoiser cannot run on ${(eps ?? ["wasm"]).join(", ")}: onnxruntime's CPU ` +
      "kernels have no bfloat16 MatMul/Cast. Convert the model to float16 or float32 " +
      "(onnxruntime.transformers.float16 / onnx numpy_helper), or use an execution provider " +
      `with bfloat16 kernels. (onnxruntime said: ${why})`,
  );
}

/** Options of {@link loadDenoiser} beyond the session's. */
export interface LoadDenoiserOptions extends CreateSessionOptions {
  /** File name used in messages (default "unet.onnx"). */
  source?: string;
  /**
   * Which attention layers must be tapped (default `"all"`): the load fails with one error
   * listing found and skipped layers when the model cannot give them.
   */
  attention?: AttentionNeed;
  /** How to find MMDiT joint attention (the latent input, the config's token layout). */
  joint?: JointOptions;
}

/**
 * Loads a denoiser from ONNX bytes, tapping Q and K of every attention core.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { models } from "@attnkit/attnkit";
 * // The embedded model's UNet (weights/shapes/unet.onnx).
 * const file = new URL("../../weights/shapes/unet.onnx", import.meta.url);
 * const d = await models.loadDenoiser(Deno.readFileSync(file), {
 *   sample: "sample", timestep: "timestep", context: "encoder_hidden_states", output: "out_sample",
 * });
 * assert(d.taps.length > 0); // one tap per attention core
 * await d.release();
 * ```
 */
export async function loadDenoiser(
  bytes: Uint8Array,
  io: DenoiserIo,
  loadOpts: LoadDenoiserOptions = {},
): Promise<Denoiser> {
  const { attention = "all", ...opts } = loadOpts;
  const source = opts.source ?? "unet.onnx";
  const graph = decodeModel(bytes, source);
  checkIo(graph, io, source);
  const scan = scanAttention(graph, {
    conditioning: [io.context],
    joint: { latent: [io.sample], ...opts.joint },
  });
  requireAttention(scan, attention, source);
  const cores = scan.cores;
  const masked = cores.filter((c) =>
    c.masks && (c.masks.additive?.length || c.masks.keyPadding || c.masks.boolean)
  );
  check(
    attention === "none" || masked.length === 0,
    source,
    () =>
      `attention layer(s) ${masked.map((c) => `#${c.index}`).join(", ")} apply a mask inside ` +
      "a fused op; maps recomputed from the tapped Q and K would ignore it. Export without " +
      "attention fusion (or without the mask input).",
  );
  const tapped = tapAttention(graph, cores, { qk: true });
  const jointOf = (j: number) => cores[tapped.taps[j].core].joint;
  const parts: TapPart[] = tapped.taps.flatMap((_t, j): TapPart[] =>
    jointOf(j) ? [{ tap: j, part: "self" }, { tap: j, part: "cross" }] : [{ tap: j, part: "all" }]
  );
  // Float16 / bfloat16 exports: float32 in and out, the model's dtype inside.
  const edges = [io.sample, io.timestep, io.context];
  const main = withFloat32Io(tapped.model, edges, [io.output]);
  const outName = main.outputs[io.output] ?? io.output;
  // Maps inside the graph (and their VJP) for float32 graphs whose cores are all plain MatMul
  // attention; Einsum, fused ops and float16 graphs take the Q/K route (their gradients go through
  // a lowered float32 copy, see \`gradient\`).
  const mapsInGraph = outName === io.output &&
    cores.every((c) => c.form === "matmul" && !c.joint);
  const session: Session = await createSession(encodeModel(main.model), { ...opts, source })
    .catch((e) => {
      throw bfloat16Refusal(graph, source, opts.executionProviders, e);
    });
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
        session: await createSession(encodeModel(withFloat32Io(built.model, edges, []).model), {
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
    [io.timestep]: timestepTensor(main.model, io.timestep, timestep, latents.shape[0]),
    [io.context]: new ort.Tensor("float32", context.data, [...context.shape]),
  });
  // The map graph per latent size (layer sizes follow the latent), with its VJP built on first
  // use; the layer sizes and head counts come from one probe run of the Q/K-tapped session.
  const mapGraphs = new Map<string, Promise<MapSession>>();
  const mapSession = (latents: Tensor, feeds: Record<string, OrtTensor>): Promise<MapSession> => {
    const [, , lh, lw] = latents.shape;
    const key = `${lh}x${lw}`;
    let m = mapGraphs.get(key);
    if (!m) {
      m = (async (): Promise<MapSession> => {
        const probe = await session.run(feeds, tapped.taps.map((t) => t.q!));
        const layers: MapLayer[] = tapped.taps.map((t) => {
          const [, heads, n] = probe[t.q!].dims as number[];
          return { size: layerSize(n, [lh, lw]), heads };
        });
        const built = mapsGraph(graph, cores, layers);
        const s = await createSession(encodeModel(built.model), {
          ...opts,
          source: `${source} (maps)`,
        });
        return { built, session: s };
      })();
      m.catch(() => mapGraphs.delete(key));
      mapGraphs.set(key, m);
    }
    return m;
  };
  // What the forward half of the last "grad" run left for the backward half, and for which call.
  let kept:
    | { latents: Tensor; context: Tensor; timestep: number; m: MapSession; saved: SavedTensors }
    | undefined;
  const runMaps = async (
    latents: Tensor,
    feeds: Record<string, OrtTensor>,
    grad: boolean,
    call: { context: Tensor; timestep: number },
  ): Promise<{ out: Tensor; maps: AttentionMaps[] }> => {
    const m = await mapSession(latents, feeds);
    const { self, cross, size } = m.built;
    const names = [io.output, ...(self ? [self] : []), ...(cross ? [cross] : [])];
    kept = undefined;
    let res: Record<string, OrtTensor>;
    if (grad) {
      const h = await halvesOf(m);
      res = await h.forward.run(feeds, [...names, ...h.halves.saved]);
      const saved: SavedTensors = {};
      for (const sv of h.halves.saved) saved[sv] = res[sv];
      kept = { latents, ...call, m, saved };
    } else res = await m.session.run(feeds, names);
    const outT = res[io.output];
    const out = tensor(outT.dims as number[], floatData(outT, io.output).slice());
    return { out, maps: splitMaps(res, m.built, latents.shape[0], size) };
  };
  const halvesOf = (m: MapSession): Promise<Halves> => {
    m.halves ??= (async (): Promise<Halves> => {
      const { self, cross } = m.built;
      const taps = [...(self ? [self] : []), ...(cross ? [cross] : [])];
      const built = vjpGraph(m.built.model, { wrt: [io.sample], taps }, {
        keepForwardOutputs: true,
      });
      const halves = splitVjp(built, [io.output, ...taps], m.built.model);
      const forward = await createSession(encodeModel(halves.forward), {
        ...opts,
        source: `${source} (maps VJP, forward half)`,
      });
      return {
        halves,
        forward,
        cot: Object.fromEntries(taps.map((t, i) => [t, built.cotangentInputs[i]])),
        out: built.gradOutputs[0],
      };
    })();
    return m.halves;
  };
  return {
    taps: tapped.taps,
    parts,
    async run(latents, timestep, context, wantTaps, bias, wantMaps = false) {
      expectFinite(latents, "latents");
      const [b, , lh, lw] = latents.shape;
      const feeds = feedsOf(latents, timestep, context);
      const biasing = bias !== undefined && bias.some((x) => x);
      if (wantMaps && !wantTaps && !biasing && mapsInGraph) {
        return runMaps(latents, feeds, wantMaps === "grad", { context, timestep });
      }
      // With a bias (the map graph has no bias input), or a form the map graph's VJP cannot take
      // (Einsum, fused ops, float16), the maps come from the taps.
      const readTaps = wantTaps || wantMaps;
      const fetches = readTaps ? [outName, ...tapNames] : [outName];
      let use = session;
      check(
        bias === undefined || bias.length === parts.length,
        "bias",
        () => `expected one entry per tap (${parts.length}), got ${bias!.length}`,
      );
      if (biasing) {
        const [s, extra] = await biasFeeds(bias, context.shape[1]);
        use = s;
        Object.assign(feeds, extra);
      }
      const res = await use.run(feeds, fetches);
      const outT = res[outName];
      const out = tensor(outT.dims as number[], floatData(outT, io.output).slice());
      if (!readTaps) return { out };
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
      return {
        out,
        ...(wantTaps ? { taps: items } : {}),
        // Taps to maps on attnkit's kernel backend (WGSL on a GPU, else onnxruntime's CPU kernels).
        ...(wantMaps ? { maps: await Promise.all(items.map((t) => accumulateMapsAuto(t))) } : {}),
      };
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
        // Gradients of a float16/bfloat16 export are taken through the same network in float32
        // (the VJP's own constants are float32).
        // Einsum and fused attention are differentiated as the MatMuls they are.
        const plain = lowerFusedAttention(lowerEinsum(upcastToFloat32(tapped.model)), cores);
        const built = vjpGraph(plain, { wrt: [io.sample], taps: names });
        const grad = built.gradOutputs[0];
        const io32 = withFloat32Io(built.model, edges, [grad]);
        vjp = {
          session: await createSession(encodeModel(io32.model), {
            ...opts,
            source: `${source} (VJP)`,
          }),
          cot: built.cotangentInputs,
          out: io32.outputs[grad] ?? grad,
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
    mapsInGraph,
    async gradientFromMaps(latents, timestep, context, mapGrads) {
      check(
        mapsInGraph,
        "model",
        "this denoiser takes map gradients through its Q/K taps (Einsum, fused or float16 " +
          "attention); use gradient() with tap gradients",
      );
      const b = latents.shape[0];
      check(
        mapGrads.length === b,
        "mapGrads",
        `expected one entry per batch item (${b}), got ${mapGrads.length}`,
      );
      const feeds = feedsOf(latents, timestep, context);
      const m = await mapSession(latents, feeds);
      const { self, cross, size } = m.built;
      const hw = size[0] * size[1];
      const cotFeeds = (cot: Record<string, string>) => {
        for (const [part, name] of [["self", self], ["cross", cross]] as const) {
          if (!name) continue;
          const cols = part === "self" ? hw : context.shape[1];
          const per = hw * cols;
          const data = new Float32Array(per * b);
          mapGrads.forEach((g, i) => {
            const t = g[part];
            if (!t) return;
            check(
              t.data.length === per,
              `mapGrads[${i}].${part}`,
              `expected [${hw}, ${cols}], got [${t.shape}]`,
            );
            data.set(t.data, i * per);
          });
          feeds[cot[name]] = new ort.Tensor("float32", data, [b, hw, cols]);
        }
      };
      const k = kept;
      kept = undefined;
      if (
        k && k.m === m && k.latents === latents && k.context === context &&
        k.timestep === timestep
      ) {
        // The forward half already ran on these tensors: only the backward half runs.
        const h = await halvesOf(m);
        h.backward ??= await createSession(
          encodeModel(h.halves.backward(savedInfo(k.saved))),
          { ...opts, source: `${source} (maps VJP, backward half)` },
        );
        const bf: Record<string, OrtTensor> = {};
        for (const x of h.halves.passed) bf[x] = feeds[x];
        Object.assign(bf, k.saved);
        cotFeeds(h.cot);
        for (const c of Object.values(h.cot)) bf[c] = feeds[c];
        const res = await h.backward.run(bf, [h.out]);
        const g = res[h.out];
        return tensor(g.dims as number[], floatData(g, h.out).slice());
      }
      if (!m.vjp) {
        const taps = [...(self ? [self] : []), ...(cross ? [cross] : [])];
        const built = vjpGraph(m.built.model, { wrt: [io.sample], taps });
        m.vjp = {
          session: await createSession(encodeModel(built.model), {
            ...opts,
            source: `${source} (maps VJP)`,
          }),
          cot: Object.fromEntries(taps.map((t, i) => [t, built.cotangentInputs[i]])),
          out: built.gradOutputs[0],
        };
      }
      cotFeeds(m.vjp.cot);
      const res = await m.vjp.session.run(feeds, [m.vjp.out]);
      const g = res[m.vjp.out];
      return tensor(g.dims as number[], floatData(g, m.vjp.out).slice());
    },
    async release() {
      for (const m of mapGraphs.values()) {
        const s = await m.catch(() => undefined);
        if (s) await s.session.release();
        if (s?.vjp) await s.vjp.session.release();
        const h = await s?.halves?.catch(() => undefined);
        if (h) await h.forward.release();
        if (h?.backward) await h.backward.release();
      }
      await session.release();
      if (vjp) await vjp.session.release();
      if (biased) await biased.session.release();
    },
  };
}

/** A session of the map graph, with its VJP once built. */
interface MapSession {
  built: MapsGraph;
  session: Session;
  vjp?: { session: Session; cot: Record<string, string>; out: string };
  halves?: Promise<Halves>;
}

/** The map graph's VJP split in two (forward half, backward half built on first use). */
interface Halves {
  halves: VjpHalves;
  forward: Session;
  backward?: Session;
  cot: Record<string, string>;
  out: string;
}

/** Forward-half outputs the backward half reads, by name. */
type SavedTensors = Record<string, OrtTensor>;

const ELEM_TYPES: Record<string, number> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
};

/** Typed graph inputs for saved tensors (types only: the batch size may change). */
function savedInfo(saved: SavedTensors): ValueInfoProto[] {
  return Object.entries(saved).map(([name, t]) => {
    const elemType = ELEM_TYPES[t.type];
    if (elemType === undefined) {
      throw new AttnkitError(name, `saved tensor of unsupported type ${t.type}`);
    }
    return { name, type: { tensorType: { elemType } } };
  });
}

/** Splits the `[B, HW, ·]` map outputs into per-item {@link AttentionMaps}. */
function splitMaps(
  res: Record<string, OrtTensor>,
  built: MapsGraph,
  b: number,
  size: readonly [number, number],
): AttentionMaps[] {
  const hw = size[0] * size[1];
  const part = (name: string | undefined) => {
    if (!name) return Array.from({ length: b }, () => tensor([hw, 0]));
    const v = res[name];
    const cols = (v.dims as number[])[2];
    const data = floatData(v, name);
    return Array.from(
      { length: b },
      (_, i) => tensor([hw, cols], data.slice(i * hw * cols, (i + 1) * hw * cols)),
    );
  };
  const self = part(built.self);
  const cross = part(built.cross);
  return self.map((s, i) => ({ self: s, cross: cross[i], size: [size[0], size[1]] }));
}

/** Checks that a tensor has `n` elements per batch item for `b` items. */
export function expectBatch(t: Tensor, b: number, argument: string): void {
  check(t.shape[0] === b, argument, `expected batch ${b}, got shape [${t.shape}]`);
  check(sizeOf(t.shape) === t.data.length, argument, "data length does not match its shape");
}
