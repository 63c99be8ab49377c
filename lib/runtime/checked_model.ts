/**
 * Validated numbers at the {@link DiffusionModel} edge: every loader wraps its model with
 * {@link checkedModel}, so a NaN or infinity in a context, a timestep, a latent, or in what a
 * model file computes, stops with an {@link AttnkitError} naming the argument (or the model file)
 * and the first bad index, instead of flowing silently into an image (issue 10, F11).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadShapesModel } from "@attnkit/attnkit";
 * import { checkedModel } from "./checked_model.ts";
 * const raw = await loadShapesModel(); // already checked; wrapping again is harmless
 * const files = { textEncoder: "text_encoder.onnx", unet: "unet.onnx", decoder: "vae_decoder.onnx" };
 * const model = checkedModel(raw, files);
 * assert(model.info === raw.info);
 * await model.release();
 * ```
 *
 * @module
 */
import { AttnkitError, check } from "../errors.ts";
import type { Tensor } from "../tensor.ts";
import type { DiffusionModel } from "./model.ts";
import type { TapGrad } from "../attention/types.ts";

/** Names of the files behind a model's calls, for errors about what they computed. */
export interface ModelFiles {
  /** The text encoder file. */
  textEncoder: string;
  /** The denoiser (UNet / DiT) file. */
  unet: string;
  /** The VAE decoder file. */
  decoder: string;
}

function firstNonFinite(d: ArrayLike<number>): number {
  for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i])) return i;
  return -1;
}

function input(t: Tensor, argument: string, rank: number, layout: string): void {
  check(
    !!t && Array.isArray(t.shape) && t.data instanceof Float32Array,
    argument,
    `expected a Tensor ${layout}`,
  );
  check(t.shape.length === rank, argument, () => `expected ${layout}, got shape [${t.shape}]`);
  check(
    t.shape.every((d) => Number.isSafeInteger(d) && d >= 0),
    argument,
    () => `shape [${t.shape}] must hold non-negative integers`,
  );
  const size = t.shape.reduce((a, b) => a * b, 1);
  check(
    t.data.length === size,
    argument,
    () => `shape [${t.shape}] needs ${size} values, but data holds ${t.data.length}`,
  );
  const i = firstNonFinite(t.data);
  check(i < 0, argument, () => `contains ${t.data[i]} at flat index ${i} (shape [${t.shape}])`);
}

function output(t: Tensor, file: string, what: string): Tensor {
  const i = firstNonFinite(t.data);
  if (i >= 0) {
    throw new AttnkitError(
      file,
      `${what} contains ${t.data[i]} at flat index ${i} (shape [${t.shape}]) although every ` +
        "input was finite; the model file computes non-finite values",
    );
  }
  return t;
}

/**
 * Wraps a model so its inputs are checked (finite, expected rank; timestep a finite number in
 * [0, trainSteps]) and its outputs are finite. Latents `[B, C, h, w]`, contexts `[B, L, D]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { initialLatents, loadShapesModel } from "@attnkit/attnkit";
 * import { checkedModel } from "./checked_model.ts";
 * const model = await loadShapesModel();
 * const safe = checkedModel(model, { textEncoder: "te.onnx", unet: "unet.onnx", decoder: "dec.onnx" });
 * try {
 *   const latents = initialLatents(model.info.latentShape, 0, 1);
 *   const context = await safe.encodeText(["a red circle"]);
 *   context.data[0] = NaN;
 *   let message = "";
 *   try {
 *     await safe.denoise(latents, 500, context);
 *   } catch (e) {
 *     message = String(e); // AttnkitError "context: contains NaN at …"
 *   }
 *   assert(message.includes("context") && message.includes("NaN"));
 * } finally {
 *   await model.release();
 * }
 * ```
 */
export function checkedModel(model: DiffusionModel, files: ModelFiles): DiffusionModel {
  const T = model.info.trainSteps;
  const C = model.info.latentShape[0];
  const latents = (t: Tensor, argument = "latents"): void => {
    input(t, argument, 4, "[B, C, h, w]");
    check(t.shape[1] === C, argument, () => `expected ${C} channels, got shape [${t.shape}]`);
  };
  const timestep = (t: number): void =>
    check(
      typeof t === "number" && Number.isFinite(t) && t >= 0 && t <= T,
      "timestep",
      () => `must be a finite number in [0, ${T}] (the model's training steps), got ${t}`,
    );
  const context = (t: Tensor): void => input(t, "context", 3, "[B, L, D]");
  return {
    info: model.info,
    tokenizer: model.tokenizer,
    async encodeText(prompts) {
      check(
        Array.isArray(prompts) && prompts.every((p) => typeof p === "string"),
        "prompts",
        "expected an array of strings",
      );
      return output(await model.encodeText(prompts), files.textEncoder, "the text embedding");
    },
    async denoise(x, t, ctx, opts) {
      latents(x);
      timestep(t);
      context(ctx);
      const r = await model.denoise(x, t, ctx, opts);
      output(r.out, files.unet, `the prediction at timestep ${t}`);
      return r;
    },
    async gradient(x, t, ctx, tapGrads) {
      latents(x);
      timestep(t);
      context(ctx);
      check(Array.isArray(tapGrads), "tapGrads", "expected one list of tap gradients per item");
      tapGrads.forEach((item, b) =>
        item.forEach((g: TapGrad, j: number) => {
          for (const which of ["dq", "dk"] as const) {
            const d = g?.[which]?.data;
            const i = d ? firstNonFinite(d) : -1;
            check(
              i < 0,
              `tapGrads[${b}][${j}].${which}`,
              () => `contains ${d![i]} at flat index ${i}`,
            );
          }
        })
      );
      return output(await model.gradient(x, t, ctx, tapGrads), files.unet, "the gradient");
    },
    // Only when the model makes maps in its graph (its absence tells controls to use taps).
    gradientFromMaps: model.gradientFromMaps
      ? async (x, t, ctx, mapGrads) => {
        latents(x);
        timestep(t);
        context(ctx);
        check(Array.isArray(mapGrads), "mapGrads", "expected one map gradient per item");
        mapGrads.forEach((g, b) => {
          for (const which of ["self", "cross"] as const) {
            const d = g?.[which]?.data;
            const i = d ? firstNonFinite(d) : -1;
            check(i < 0, `mapGrads[${b}].${which}`, () => `contains ${d![i]} at flat index ${i}`);
          }
        });
        return output(
          await model.gradientFromMaps!(x, t, ctx, mapGrads),
          files.unet,
          "the gradient",
        );
      }
      : undefined,
    async decode(x) {
      latents(x);
      return output(await model.decode(x), files.decoder, "the decoded image");
    },
    release: () => model.release(),
  };
}
