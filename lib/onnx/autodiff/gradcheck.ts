/**
 * A finite-difference check of a VJP graph, run in onnxruntime-web: for random directions v,
 * compares ⟨∇, v⟩ from the emitted VJP graph with the central difference
 * (φ(x + h·v) − φ(x − h·v)) / 2h of φ(x) = Σ_taps ⟨cotangent, tap(x)⟩ from the forward graph.
 *
 * Float32 forward passes limit what a difference quotient can show: rounding in φ is about
 * 1e-7·Σ|cotangent·tap|, divided by 2h, and the truncation error is O(h²). With h ≈ 1e-2 and
 * unit-variance directions both stay near 1e-4 relative, so agreement to 1e-2 separates a
 * correct rule from a wrong one (a wrong rule is off by O(1)).
 *
 * @module
 */
import { AttnkitError } from "../../errors.ts";
import { gaussian, mulberry32 } from "../../random.ts";
import type { Tensor as OrtTensor } from "npm:onnxruntime-web@1.30.0/webgpu";
import { createSession, ort, type Session } from "../ort.ts";
import { encodeModel } from "../proto.ts";
import type { Model } from "../types.ts";
import { vjpGraph, type VjpSpec } from "./vjp.ts";

/** Options of {@link gradCheck}. */
export interface GradCheckOptions {
  /** Number of random directions (default 3). */
  directions?: number;
  /** Step along each direction (default 1e-2). */
  h?: number;
  /** Seed for cotangents and directions (default 1). */
  seed?: number;
  /** Session options: ORT graph optimisation (default "all"). */
  graphOptimizationLevel?: "disabled" | "basic" | "extended" | "all";
}

/** One direction's comparison. */
export interface DirectionCheck {
  /** ⟨∇, v⟩ from the VJP graph. */
  analytic: number;
  /** Central difference of φ along v. */
  numeric: number;
  /** |analytic − numeric| / max(|analytic|, |numeric|, 1e-6). */
  relError: number;
}

/** Result of {@link gradCheck}. */
export interface GradCheckResult {
  /** Per-direction comparisons. */
  checks: DirectionCheck[];
  /** Largest relative error over the directions. */
  maxRelError: number;
  /** Milliseconds for one forward run and one VJP run (after a warm-up run of each). */
  forwardMs: number;
  /** Milliseconds for one VJP run. */
  vjpMs: number;
}

/** ORT input tensors by name. */
export type Feeds = Record<string, OrtTensor>;

/** A model whose outputs are exactly `names` (intermediates become outputs). */
export function withOutputs(model: Model, names: readonly string[]): Model {
  const g = model.graph;
  const output = names.map((n) =>
    g.output.find((o) => o.name === n) ?? { name: n, type: { tensorType: { elemType: 1 } } }
  );
  return { ...model, graph: { ...g, output, valueInfo: [] } };
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

async function runOnce(session: Session, feeds: Feeds): Promise<Record<string, OrtTensor>> {
  return await session.run(feeds);
}

function floatData(t: OrtTensor, name: string): Float32Array {
  if (!(t.data instanceof Float32Array)) {
    throw new AttnkitError(name, `expected a float32 tensor, got ${t.type}`);
  }
  return t.data;
}

/**
 * Emits the VJP of `model` for `spec`, runs it and the forward model in onnxruntime-web (wasm)
 * at `feeds`, and compares directional derivatives along random directions.
 */
export async function gradCheck(
  model: Model,
  spec: VjpSpec,
  feeds: Feeds,
  opts: GradCheckOptions = {},
): Promise<GradCheckResult> {
  const h = opts.h ?? 1e-2;
  const rng = mulberry32(opts.seed ?? 1);
  const level = opts.graphOptimizationLevel ?? "all";
  const vjp = vjpGraph(model, spec);
  const fwd = await createSession(encodeModel(withOutputs(model, spec.taps)), {
    graphOptimizationLevel: level,
  });
  const back = await createSession(encodeModel(vjp.model), { graphOptimizationLevel: level });
  try {
    const base = await runOnce(fwd, feeds);
    const cot: Feeds = {};
    const cotData = spec.taps.map((t, i) => {
      const y = base[t];
      const c = gaussian(rng, y.size);
      cot[vjp.cotangentInputs[i]] = new ort.Tensor("float32", c, y.dims);
      return c;
    });
    const phi = async (f: Feeds): Promise<number> => {
      const out = await runOnce(fwd, f);
      return spec.taps.reduce((s, t, i) => s + dot(cotData[i], floatData(out[t], t)), 0);
    };
    let t0 = performance.now();
    await runOnce(fwd, feeds);
    const forwardMs = performance.now() - t0;
    const grads = await runOnce(back, { ...feeds, ...cot });
    t0 = performance.now();
    await runOnce(back, { ...feeds, ...cot });
    const vjpMs = performance.now() - t0;
    const checks: DirectionCheck[] = [];
    for (let k = 0; k < (opts.directions ?? 3); k++) {
      const plus: Feeds = { ...feeds };
      const minus: Feeds = { ...feeds };
      let analytic = 0;
      spec.wrt.forEach((w, i) => {
        const x = feeds[w];
        if (!x) throw new AttnkitError("feeds", `no value for wrt input "${w}"`);
        const xd = floatData(x, w);
        const v = gaussian(rng, xd.length);
        analytic += dot(floatData(grads[vjp.gradOutputs[i]], vjp.gradOutputs[i]), v);
        plus[w] = new ort.Tensor("float32", xd.map((a, j) => a + h * v[j]), x.dims);
        minus[w] = new ort.Tensor("float32", xd.map((a, j) => a - h * v[j]), x.dims);
      });
      const numeric = ((await phi(plus)) - (await phi(minus))) / (2 * h);
      const relError = Math.abs(analytic - numeric) /
        Math.max(Math.abs(analytic), Math.abs(numeric), 1e-6);
      checks.push({ analytic, numeric, relError });
    }
    return { checks, maxRelError: Math.max(...checks.map((c) => c.relError)), forwardMs, vjpMs };
  } finally {
    await fwd.release();
    await back.release();
  }
}
