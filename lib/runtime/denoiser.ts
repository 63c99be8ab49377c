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
import type { Model } from "../onnx/types.ts";
import type { Tensor as OrtTensor } from "npm:onnxruntime-web@1.30.0/webgpu";
import { AttnkitError, check } from "../errors.ts";
import { expectFinite, sizeOf, type Tensor, tensor } from "../tensor.ts";
import type { AttentionTap, TapGrad } from "../attention/types.ts";
import { vjpGraph } from "../onnx/autodiff/vjp.ts";
import { biasAttention } from "../hooks/bias.ts";
import { lowerEinsum, lowerFusedAttention } from "../hooks/lower.ts";
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

/** A denoiser session with its taps. */
export interface Denoiser {
  /** The taps' descriptions, one per attention core, in graph order. */
  readonly taps: readonly TapInfo[];
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
}

/**
 * Loads a denoiser from ONNX bytes, tapping Q and K of every attention core.
 *
 * @example
 * ```ts
 * const d = await loadDenoiser(Deno.readFileSync("unet.onnx"), {
 *   sample: "sample", timestep: "timestep", context: "encoder_hidden_states", output: "out_sample",
 * });
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
  const scan = scanAttention(graph, { conditioning: [io.context] });
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
  // Float16 / bfloat16 exports: float32 in and out, the model's dtype inside.
  const edges = [io.sample, io.timestep, io.context];
  const main = withFloat32Io(tapped.model, edges, [io.output]);
  const outName = main.outputs[io.output] ?? io.output;
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
  const biasFeeds = async (bias: AttentionBias): Promise<[Session, Record<string, OrtTensor>]> => {
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
  return {
    taps: tapped.taps,
    async run(latents, timestep, context, wantTaps, bias) {
      expectFinite(latents, "latents");
      const [b, , lh, lw] = latents.shape;
      const feeds = feedsOf(latents, timestep, context);
      const fetches = wantTaps ? [outName, ...tapNames] : [outName];
      let use = session;
      check(
        bias === undefined || bias.length === tapped.taps.length,
        "bias",
        () => `expected one entry per attention core (${tapped.taps.length}), got ${bias!.length}`,
      );
      if (bias && bias.some((x) => x)) {
        const [s, extra] = await biasFeeds(bias);
        use = s;
        Object.assign(feeds, extra);
      }
      const res = await use.run(feeds, fetches);
      const outT = res[outName];
      const out = tensor(outT.dims as number[], floatData(outT, io.output).slice());
      if (!wantTaps) return { out };
      const items: AttentionTap[][] = Array.from({ length: b }, () => []);
      for (const tap of tapped.taps) {
        const qs = perItem(res[tap.q!], tap.q!);
        const ks = perItem(res[tap.k!], tap.k!);
        const [, , n, d] = res[tap.q!].dims as number[];
        const size = layerSize(n, [lh, lw]);
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
          items[i].push({ kind: tap.kind, q, k: ks[i], size });
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
      tapped.taps.forEach((_tap, j) => {
        for (
          const [which, name] of [["dq", vjp!.cot[2 * j]], ["dk", vjp!.cot[2 * j + 1]]] as const
        ) {
          const first = tapGrads[0][j][which];
          const per = first.data.length;
          const data = new Float32Array(per * b);
          for (let i = 0; i < b; i++) {
            const g = tapGrads[i][j][which];
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
