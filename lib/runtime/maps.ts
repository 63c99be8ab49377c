/**
 * The one way pipelines get accumulated attention maps (ISAC Eq. 1-2) from a denoiser call, so
 * callers never choose between backends: a model that makes the maps inside its graph
 * (`gradientFromMaps` present, see `lib/hooks/maps_graph.ts`) returns them from the same session
 * run as the noise prediction; any other model is asked for Q/K taps and the maps are accumulated
 * on attnkit's kernel backend (`accumulateMapsAuto`: WGSL on a real GPU, else the CPU path).
 *
 * @module
 */
import { accumulateMapsAuto } from "../../kernels/accumulate_maps.ts";
import type { KernelOptions } from "../../kernels/backend.ts";
import type { AttentionMaps } from "../attention/types.ts";
import { check } from "../errors.ts";
import type { Tensor } from "../tensor.ts";
import type { AttentionBias, DenoiseResult, DiffusionModel } from "./model.ts";

/** What {@link denoiseWithMaps} is asked for. */
export interface MapsRequest {
  /** Also return the Q/K taps of every item. */
  taps?: boolean;
  /** Return the accumulated maps of items `from`, `from + 1`, …. */
  maps?: boolean;
  /** First batch item whose maps are wanted (default 0; CFG calls pass N to skip the unconditional half). */
  from?: number;
  /** Where taps are accumulated for models without in-graph maps (default: the backend picked once). */
  kernels?: KernelOptions;
  /** Attention steering bias, passed through. */
  bias?: AttentionBias;
}

/** Whether a model makes the maps inside its own graph. */
export function hasGraphMaps(model: DiffusionModel): boolean {
  return typeof model.gradientFromMaps === "function";
}

/**
 * One denoiser call; with `maps`, `maps[i]` holds item `from + i`'s accumulated maps. Throws an
 * AttnkitError naming `model` when a model that claims in-graph maps returns none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { initialLatents, loadShapesModel, maps as mapsApi } from "@attnkit/attnkit";
 * const model = await loadShapesModel();
 * try {
 *   const ctx = await model.encodeText(["two red circles"]);
 *   const x = initialLatents(model.info.latentShape, 0, 1);
 *   const { out, maps } = await mapsApi.denoiseWithMaps(model, x, 501, ctx, { maps: true });
 *   console.log(out.shape, maps![0].self.shape, maps![0].cross.shape);
 *   assert(out.shape.join() === x.shape.join() && maps!.length === 1);
 * } finally {
 *   await model.release();
 * }
 * ```
 */
export async function denoiseWithMaps(
  model: DiffusionModel,
  latents: Tensor,
  timestep: number,
  context: Tensor,
  req: MapsRequest = {},
): Promise<DenoiseResult> {
  const from = req.from ?? 0;
  const bias = req.bias ? { bias: req.bias } : {};
  if (!req.maps) return model.denoise(latents, timestep, context, { taps: req.taps, ...bias });
  const b = latents.shape[0];
  check(
    Number.isInteger(from) && from >= 0 && from < b,
    "from",
    `must be in [0, ${b}), got ${from}`,
  );
  if (hasGraphMaps(model)) {
    const res = await model.denoise(latents, timestep, context, {
      taps: req.taps,
      maps: true,
      ...bias,
    });
    check(
      res.maps !== undefined && res.maps.length === b,
      "model",
      `denoise() was asked for maps and returned ${res.maps?.length ?? "none"} for ${b} item(s)`,
    );
    return { ...res, maps: res.maps.slice(from) };
  }
  const res = await model.denoise(latents, timestep, context, { taps: true, ...bias });
  check(
    res.taps !== undefined && res.taps.length === b,
    "model",
    `denoise() returned no attention taps for ${b} item(s); the maps need them`,
  );
  const maps: AttentionMaps[] = [];
  for (const taps of res.taps.slice(from)) maps.push(await accumulateMapsAuto(taps, req.kernels));
  return { out: res.out, ...(req.taps ? { taps: res.taps } : {}), maps };
}
