/**
 * Which attention layers feed a loss. The maps a loss sees are accumulated from the taps the
 * denoiser returns; Attend-and-Excite and the step-selection (GSN) losses read only the layers at
 * one resolution, so a model is wrapped to return only those taps (and to take gradients for only
 * those, the others getting zero).
 *
 * The A&E resolution: the reference code uses the 16×16 layers for SD 1.x at 512² (diffusers:
 * `attn_res = ceil(W/32), ceil(H/32)`), i.e. the latent size divided by 4. {@link attendExciteSize}
 * takes that size when the model has layers there, else the largest layer size. The embedded
 * shapes model has a 16×16 latent and layers at 16×16 and 8×8: latent/4 = 4×4 does not exist,
 * so its 16×16 layers (its largest, where layouts are decided at its scale) are used.
 *
 * @module
 */
import { check } from "../errors.ts";
import { type Tensor, tensor } from "../tensor.ts";
import type { AttentionTap, TapGrad } from "../attention/types.ts";
import type { DiffusionModel } from "../runtime/model.ts";

/** A&E's map size for a model whose layers have `sizes`, with latent `[h, w]` (see module doc). */
export function attendExciteSize(
  sizes: readonly (readonly [number, number])[],
  latent: readonly [number, number],
): [number, number] {
  check(sizes.length > 0, "sizes", "the model has no attention layers");
  const want: [number, number] = [Math.ceil(latent[0] / 4), Math.ceil(latent[1] / 4)];
  if (sizes.some((s) => s[0] === want[0] && s[1] === want[1])) return want;
  let best = sizes[0];
  for (const s of sizes) if (s[0] * s[1] > best[0] * best[1]) best = s;
  return [best[0], best[1]];
}

/** Which taps to keep: a fixed size, A&E's rule, or a predicate. */
export type TapSelection =
  | "all"
  | "attendExcite"
  | readonly [number, number]
  | ((tap: AttentionTap) => boolean);

/**
 * The model with `denoise` returning only the selected taps and `gradient` taking tap gradients
 * for those only (zeros go to the others). `gradient` must follow the `denoise` call whose taps
 * it differentiates, as `latentGrad` does.
 */
export function withTaps(model: DiffusionModel, select: TapSelection): DiffusionModel {
  if (select === "all") return model;
  let kept: boolean[] | undefined;
  let shapes: { q: readonly number[]; k: readonly number[] }[] = [];
  const keepOf = (taps: readonly AttentionTap[]): boolean[] => {
    if (typeof select === "function") return taps.map(select);
    const size = select === "attendExcite"
      ? attendExciteSize(taps.map((t) => t.size), [
        model.info.latentShape[1],
        model.info.latentShape[2],
      ])
      : select;
    const keep = taps.map((t) => t.size[0] === size[0] && t.size[1] === size[1]);
    check(
      keep.some((k) => k),
      "select",
      () =>
        `no attention layer has size ${size[0]}×${size[1]} (sizes: ${
          taps.map((t) => t.size.join("×"))
        })`,
    );
    return keep;
  };
  return {
    ...model,
    info: model.info,
    tokenizer: model.tokenizer,
    encodeText: (p) => model.encodeText(p),
    decode: (l) => model.decode(l),
    release: () => model.release(),
    // The inner model's in-graph maps average every layer; this view's maps must come from the
    // kept layers' taps, so it does not offer them.
    gradientFromMaps: undefined,
    async denoise(latents, timestep, context, opts) {
      const { maps: _maps, ...rest } = opts ?? {};
      const res = await model.denoise(latents, timestep, context, rest);
      if (!res.taps) return res;
      const first = res.taps[0] ?? [];
      kept = keepOf(first);
      shapes = first.map((t) => ({ q: t.q.shape, k: t.k.shape }));
      return { ...res, taps: res.taps.map((items) => items.filter((_, j) => kept![j])) };
    },
    gradient(latents, timestep, context, tapGrads) {
      check(kept !== undefined, "model", "gradient() before a denoise() call with taps");
      const full: TapGrad[][] = tapGrads.map((g) => {
        let next = 0;
        return kept!.map((k, j) => (k ? g[next++] : zeroGrad(shapes[j])));
      });
      return model.gradient(latents, timestep, context, full);
    },
  };
}

function zeroGrad(s: { q: readonly number[]; k: readonly number[] }): TapGrad {
  const zero = (shape: readonly number[]): Tensor => tensor(shape);
  return { dq: zero(s.q), dk: zero(s.k) };
}
