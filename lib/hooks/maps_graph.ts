/**
 * ISAC Eq. 1-2 inside the model's own graph: a new model whose extra outputs are the head- and
 * layer-averaged self map `[B, HW, HW]` and cross map `[B, HW, L]` at the largest layer size,
 * computed from the attention probabilities the forward pass already makes. The runtime's
 * kernels do the averaging and the nearest-neighbour upsampling, and only the two maps leave the
 * session (not every head's Q and K). Because the outputs are ordinary graph tensors, the VJP
 * graph (`lib/onnx/autodiff`) can take cotangents on them directly, and it keeps only the nodes
 * up to the last attention layer the maps read.
 *
 * Same maths and layout as the CPU reference `accumulateMaps` (lib/attention/accumulate.ts):
 * - divisor: the total heads over all layers of that kind (1 / Σ_l h_l), so a layer's head mean
 *   is weighted by `h_l / Σ h`;
 * - upsampling: nearest neighbour by the integer factors `δy = H / h`, `δx = W / w`; cross maps
 *   on their rows only; self maps on rows and columns, the columns divided by `δy·δx` so every
 *   row still sums to 1.
 * Layers of the same kind and size are summed at their own size before one upsampling, so the
 * upsampling costs once per resolution, not once per layer.
 *
 * @module
 */
import { AttnkitError, check } from "../errors.ts";
import { DataType, type Model, type ValueInfoProto } from "../onnx/types.ts";
import {
  beginEdit,
  emit,
  finishEdit,
  floatConst,
  freshName,
  type GraphEdit,
  int64Const,
} from "./edit.ts";
import { fromFloat32 } from "../onnx/tensor_data.ts";
import type { AttentionCore } from "./find.ts";
import { tapAttention } from "./tap.ts";

/** What the map graph needs to know about one attention layer (from one probe run). */
export interface MapLayer {
  /** `[h, w]`: the spatial size of the layer's image tokens. */
  readonly size: readonly [number, number];
  /** Number of query heads. */
  readonly heads: number;
}

/** The model with map outputs, and their names. */
export interface MapsGraph {
  /** The original model plus the map outputs (the original outputs are kept, first). */
  readonly model: Model;
  /** Output name of the self map `[B, HW, HW]`; undefined when there are no self layers. */
  readonly self?: string;
  /** Output name of the cross map `[B, HW, L]`; undefined when there are no cross layers. */
  readonly cross?: string;
  /** `[H, W]`: the size the maps live at. */
  readonly size: readonly [number, number];
}

function floatOutput(name: string): ValueInfoProto {
  return { name, type: { tensorType: { elemType: DataType.FLOAT } } };
}

/** `[B, n, C]` (n = h·w) → `[B, H·W, C]`: each row repeated over its δy × δx block. */
function upsampleRows(
  e: GraphEdit,
  t: string,
  size: readonly [number, number],
  big: readonly [number, number],
  base: string,
): string {
  const [h, w] = size;
  const dy = big[0] / h, dx = big[1] / w;
  if (dy === 1 && dx === 1) return t;
  const split = emit(e, "Reshape", [t, int64Const(e, `${base}/rows6`, [0, h, 1, w, 1, -1])], base);
  const grown = emit(
    e,
    "Expand",
    [split, int64Const(e, `${base}/rows_to`, [1, 1, dy, 1, dx, 1])],
    base,
  );
  return emit(
    e,
    "Reshape",
    [grown, int64Const(e, `${base}/rows3`, [0, big[0] * big[1], -1])],
    base,
  );
}

/** `[B, R, n]` → `[B, R, H·W]`: each key column repeated over its δy × δx block. */
function upsampleColumns(
  e: GraphEdit,
  t: string,
  rows: number,
  size: readonly [number, number],
  big: readonly [number, number],
  base: string,
): string {
  const [h, w] = size;
  const dy = big[0] / h, dx = big[1] / w;
  if (dy === 1 && dx === 1) return t;
  const split = emit(
    e,
    "Reshape",
    [t, int64Const(e, `${base}/cols6`, [0, rows, h, 1, w, 1])],
    base,
  );
  const grown = emit(
    e,
    "Expand",
    [split, int64Const(e, `${base}/cols_to`, [1, 1, 1, dy, 1, dx])],
    base,
  );
  return emit(
    e,
    "Reshape",
    [grown, int64Const(e, `${base}/cols3`, [0, rows, big[0] * big[1]])],
    base,
  );
}

function sumAll(e: GraphEdit, terms: readonly string[], base: string): string {
  let acc = terms[0];
  for (let i = 1; i < terms.length; i++) acc = emit(e, "Add", [acc, terms[i]], base);
  return acc;
}

/**
 * A new model that also outputs ISAC's accumulated maps (Eq. 1-2) for every item of the batch.
 * `layers[i]` gives the size and head count of `cores[i]` (read them off one run with Q/K taps);
 * every size must divide the largest on both axes. The input model is not changed. Throws an
 * {@link AttnkitError} naming `layers` for a count or size that does not fit.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { findAttention, hooks } from "@attnkit/attnkit";
 * import { model, node, valueInfo } from "../onnx/build.ts";
 * // q, k, v [B=1, heads=2, N=16 (a 4×4 latent), d=4]; scores QKᵀ, Softmax, times V.
 * const unet = model({
 *   inputs: ["q", "k", "v"].map((name) => valueInfo(name, [1, 2, 16, 4])),
 *   outputs: [valueInfo("o", [1, 2, 16, 4])],
 *   nodes: [
 *     node("Transpose", ["k"], ["kt"], { perm: [0, 1, 3, 2] }),
 *     node("MatMul", ["q", "kt"], ["s"]),
 *     node("Softmax", ["s"], ["p"], { axis: -1 }),
 *     node("MatMul", ["p", "v"], ["o"]),
 *   ],
 * });
 * const cores = findAttention(unet); // a real UNet: { conditioning: ["encoder_hidden_states"] }
 * const built = hooks.mapsGraph(unet, cores, cores.map(() => ({ size: [4, 4], heads: 2 })));
 * // output names of the [B, 16, 16] self and [B, 16, L] cross maps (no cross core here)
 * console.log(built.self, built.cross);
 * assert(built.model.graph.output.some((o) => o.name === built.self));
 * assert(built.cross === undefined);
 * ```
 */
export function mapsGraph(
  model: Model,
  cores: readonly AttentionCore[],
  layers: readonly MapLayer[],
): MapsGraph {
  check(cores.length > 0, "cores", "expected at least one attention core");
  check(
    layers.length === cores.length,
    "layers",
    `expected one entry per attention core (${cores.length}), got ${layers.length}`,
  );
  let bigH = 0, bigW = 0;
  const heads = { self: 0, cross: 0 };
  layers.forEach((l, i) => {
    const [h, w] = l.size;
    check(
      Number.isInteger(h) && Number.isInteger(w) && h > 0 && w > 0 && Number.isInteger(l.heads) &&
        l.heads > 0,
      `layers[${i}]`,
      () => `expected { size: [h, w], heads } of positive integers, got ${JSON.stringify(l)}`,
    );
    bigH = Math.max(bigH, h);
    bigW = Math.max(bigW, w);
    heads[cores[i].kind] += l.heads;
  });
  layers.forEach((l, i) => {
    if (bigH % l.size[0] !== 0 || bigW % l.size[1] !== 0) {
      throw new AttnkitError(
        `layers[${i}].size`,
        `expected a size dividing the largest size [${bigH}, ${bigW}] on both axes, got [${l.size}]`,
      );
    }
  });
  const big = [bigH, bigW] as const;
  // Unfused cores laid out [B, heads, Nq, Nk] average their own Softmax output here, as a MatMul
  // with a 1/heads row (onnxruntime's GEMM reads the probabilities faster than its ReduceMean
  // over the heads axis, ~15% at SD scale); other forms get the head mean from tapAttention.
  const direct = cores.map((c) => c.form === "matmul" && c.layout === "bhnd");
  const others = cores.filter((_, i) => !direct[i]);
  const probed = others.length > 0
    ? tapAttention(model, others, { qk: false, probs: true })
    : { model, taps: [] };
  const probsOutputs = new Set(probed.taps.map((t) => t.probs!));
  const e = beginEdit(probed.model);
  let next = 0;
  const headMeans = cores.map((c, i) => {
    if (!direct[i]) return probed.taps[next++].probs!;
    const base = `attnkit/maps/mean${i}`;
    const h = layers[i].heads;
    const flat = emit(
      e,
      "Reshape",
      [c.probsOrOutput, int64Const(e, `${base}/flat`, [0, h, -1])],
      base,
    );
    const row = freshName(e, `${base}/row`);
    e.initializers.push(fromFloat32(row, [1, h], new Array(h).fill(1 / h)));
    const mean = emit(e, "MatMul", [row, flat], base);
    const nq = layers[i].size[0] * layers[i].size[1];
    return emit(e, "Reshape", [mean, int64Const(e, `${base}/back`, [0, nq, -1])], base);
  });
  // Group layers of one kind, size and head count: each layer's head mean weighs
  // h_l / (Σh · spread), the same within a group, so a group is summed first and scaled once.
  const groups = new Map<
    string,
    { kind: "self" | "cross"; size: readonly [number, number]; weight: number; terms: string[] }
  >();
  headMeans.forEach((mean, i) => {
    const l = layers[i];
    const kind = cores[i].kind;
    const spread = kind === "self" ? (bigH / l.size[0]) * (bigW / l.size[1]) : 1;
    const weight = l.heads / (heads[kind] * spread);
    const key = `${kind}_${l.size[0]}x${l.size[1]}_h${l.heads}`;
    const g = groups.get(key) ?? { kind, size: l.size, weight, terms: [] };
    g.terms.push(mean);
    groups.set(key, g);
  });
  const names: { self?: string; cross?: string } = {};
  for (const kind of ["self", "cross"] as const) {
    // Coarse to fine: each resolution's weighted sum is added at its own size, then the running
    // sum is upsampled to the next size (nearest-neighbour factors compose exactly), so only one
    // full-size upsampling and addition is paid, not one per resolution.
    const mine = [...groups.values()].filter((g) => g.kind === kind)
      .sort((a, b) => a.size[0] * a.size[1] - b.size[0] * b.size[1]);
    if (mine.length === 0) continue;
    const base = `attnkit/maps/${kind}`;
    let acc: string | undefined;
    let at: readonly [number, number] = mine[0].size;
    const grow = (t: string, from: readonly [number, number], to: readonly [number, number]) => {
      const u = kind === "self"
        ? upsampleColumns(e, t, from[0] * from[1], from, to, `${base}/grow`)
        : t;
      return upsampleRows(e, u, from, to, `${base}/grow`);
    };
    for (const g of mine) {
      const scaled = emit(e, "Mul", [
        sumAll(e, g.terms, `${base}/sum`),
        floatConst(e, `${base}/weight`, g.weight),
      ], `${base}/scaled`);
      if (acc === undefined) acc = scaled;
      else {
        // A size the running sum's size does not divide: go straight to the full size.
        const to = g.size[0] % at[0] === 0 && g.size[1] % at[1] === 0 ? g.size : big;
        acc = grow(acc, at, to);
        at = to;
        acc = emit(e, "Add", [acc, at === g.size ? scaled : grow(scaled, g.size, big)], base);
      }
      if (acc === scaled) at = g.size;
    }
    names[kind] = emit(e, "Identity", [grow(acc!, at, big)], base);
    e.outputs.push(floatOutput(names[kind]!));
  }
  const built = finishEdit(e);
  // The per-layer head means stay inside the graph: only the two maps leave the session.
  const output = built.graph.output.filter((o) => !probsOutputs.has(o.name));
  return { model: { ...built, graph: { ...built.graph, output } }, ...names, size: big };
}
