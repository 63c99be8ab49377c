/**
 * The narrow interface a diffusion model presents to samplers and controls: text in, noise
 * prediction (with attention taps) per step, image out. The embedded shapes model and Stable
 * Diffusion 1.5-class loaders both produce one; everything in `lib/control/` is written against it.
 *
 * @module
 */
import type { Tensor } from "../tensor.ts";
import type {
  AttentionMaps,
  AttentionMapsGrad,
  AttentionTap,
  TapGrad,
} from "../attention/types.ts";
import type { PromptTokenizer } from "../prompt/types.ts";
import type { BetaSchedule } from "../samplers/schedule.ts";

/** What a pipeline needs to know about a model. */
export interface ModelInfo {
  /** A display name. */
  name: string;
  /** Latent channels, height and width. */
  latentShape: readonly [number, number, number];
  /** Image height and width in pixels. */
  imageSize: readonly [number, number];
  /** Multiplier applied to VAE latents before diffusion (SD 1.5: 0.18215). */
  scaleFactor: number;
  /** Training horizon of the noise schedule (1000 for SD). */
  trainSteps: number;
  /** Beta schedule of the DDPM-family samplers (unused by a `"flow"` model). */
  betaSchedule: { kind: BetaSchedule; betaStart: number; betaEnd: number };
  /**
   * What the denoiser predicts: the noise, SD 2's v, the clean sample, or the rectified-flow
   * velocity ε − x₀ (`"flow"`: SD3/Flux-class transformers, sampled by flow-matching Euler).
   */
  prediction: "epsilon" | "v" | "sample" | "flow";
  /** Timestep shift s of a `"flow"` model's sigma schedule (SD3: 3; default 1). */
  flowShift?: number;
  /**
   * The model's diffusers scheduler config (`scheduler_config.json`), when it has one: the
   * default sampler is then `samplerFromConfig(schedulerConfig, steps)` rather than DDIM on
   * `betaSchedule`, so every field of the config is honoured.
   */
  schedulerConfig?: Readonly<Record<string, unknown>>;
  /** Class nouns the model knows (for exact prompt parsing), if it has a closed vocabulary. */
  nouns?: readonly string[];
  /** Attribute words (colours) the model knows, if it has a closed vocabulary. */
  attributes?: readonly string[];
}

/** One denoiser call's result. */
export interface DenoiseResult {
  /** The model output, same shape as the input latent. */
  out: Tensor;
  /** Attention taps per batch item (when asked): taps[b] lists every tapped layer of item b. */
  taps?: AttentionTap[][];
  /** Accumulated maps per batch item (ISAC Eq. 1-2, when asked and the model makes them). */
  maps?: AttentionMaps[];
}

/**
 * An additive bias on the pre-softmax attention scores, one entry per tap in the order of the
 * taps (graph order; a joint-attention core has two taps, its SA and CA blocks, and their biases
 * land on those blocks of its joint scores); each tensor broadcasts to `[B, heads, Nq, Nk]` (e.g.
 * `[1, 1, Nq, Nk]` for every item and head), and a missing entry means no bias on that core.
 * Zeros change nothing; −1e4 on a key column removes that key.
 */
export type AttentionBias = readonly (Tensor | null | undefined)[];

/** Options of {@link DiffusionModel.denoise}. */
export interface DenoiseOptions {
  /** Return the attention taps. */
  taps?: boolean;
  /** Attention steering: an additive score bias per core (see {@link AttentionBias}). */
  bias?: AttentionBias;
  /**
   * Return each item's accumulated maps (ISAC Eq. 1-2), for models with
   * {@link DiffusionModel.gradientFromMaps}; others ignore it (ask for `taps` instead).
   */
  maps?: boolean;
  /**
   * With `maps`: a {@link DiffusionModel.gradientFromMaps} call on these same tensors will follow,
   * so the model may keep what its backward pass reads instead of recomputing the forward.
   */
  grad?: boolean;
}

/**
 * A loaded text-to-image diffusion model. Loaders resolve every file through a `ModelRoot`
 * (`lib/models/root.ts`) and return their model wrapped in `checkedModel`
 * (`lib/runtime/checked_model.ts`), so non-finite inputs and outputs are errors at this edge.
 */
export interface DiffusionModel {
  /** Static facts. */
  readonly info: ModelInfo;
  /** The model's own tokenizer (token spans for controls come from it). */
  readonly tokenizer: PromptTokenizer;
  /** Text embeddings `[B, L, D]` for prompts. */
  encodeText(prompts: readonly string[]): Promise<Tensor>;
  /** One denoiser call: latents `[B, C, h, w]`, one timestep for all, conditioning `[B, L, D]`. */
  denoise(
    latents: Tensor,
    timestep: number,
    context: Tensor,
    opts?: DenoiseOptions,
  ): Promise<DenoiseResult>;
  /**
   * dL/dlatents through the denoiser, given dL/dq and dL/dk of every tap of every batch item
   * (reverse mode over the ONNX graph; same inputs as the {@link denoise} call that gave the taps).
   */
  gradient(
    latents: Tensor,
    timestep: number,
    context: Tensor,
    tapGrads: readonly TapGrad[][],
  ): Promise<Tensor>;
  /**
   * Optional: dL/dlatents given dL/d(maps) of every batch item, for models whose `denoise`
   * returns `maps` (the maps are made inside the model's graph and differentiated there). A model
   * with this method must return `maps` whenever `denoise` is asked for them.
   */
  gradientFromMaps?(
    latents: Tensor,
    timestep: number,
    context: Tensor,
    mapGrads: readonly AttentionMapsGrad[],
  ): Promise<Tensor>;
  /** Latents `[B, C, h, w]` (already divided by the scale factor) to images `[B, 3, H, W]` in [0, 1]. */
  decode(latents: Tensor): Promise<Tensor>;
  /** Releases sessions. */
  release(): Promise<void>;
}
