/**
 * The embedded default model: a small latent diffusion model of the shapes world, trained by
 * `weights/recipe/` and shipped in `weights/shapes/` (text encoder, UNet, VAE decoder and
 * encoder as ONNX, `config.json`, `tokenizer.json`). `loadShapesModel()` needs no network.
 * The same loader reads the embedded DiT, `weights/shapes-dit/` (an MMDiT-style rectified-flow
 * transformer on the same latent space: `files.transformer`, `prediction: "flow"`, joint
 * attention), chosen by its config.json.
 *
 * @module
 */
import { check } from "../errors.ts";
import { createSession, type CreateSessionOptions, type Session } from "../onnx/ort.ts";
import { decodeModel } from "../onnx/proto.ts";
import { readBytes, readJson } from "../runtime/read.ts";
import { loadDenoiser } from "../runtime/denoiser.ts";
import type { DiffusionModel } from "../runtime/model.ts";
import type { Tensor } from "../tensor.ts";
import { runDecoder, runTextEncoder } from "../runtime/sessions.ts";
import { wordTokenizer } from "../prompt/word_tokenizer.ts";
import { CLASSES, COLOURS } from "../shapes/world.ts";

/** `weights/shapes/config.json`, as the recipe's exporter writes it. */
export interface ShapesConfig {
  /** Model name, reported as `info.name`. */
  name: string;
  /** Side of the square decoded image in pixels. */
  image_size: number;
  /** Channels C of a `[C, h, w]` latent. */
  latent_channels: number;
  /** Side of the square latent grid (h = w). */
  latent_size: number;
  /** VAE latents × this = diffusion latents (1 / std of encoded latents); decoding divides. */
  scale_factor: number;
  /**
   * What the denoiser predicts: the added noise (`epsilon`), SD 2's velocity (`v`) or the
   * rectified-flow velocity ε − x₀ (`flow`, the DiT).
   */
  prediction: "epsilon" | "v" | "flow";
  /**
   * Training noise schedule: beta curve, training timesteps T and the β range; or, for a flow
   * model, `flow_match` with the timestep shift (the model's timestep is σ·T).
   */
  schedule: {
    kind: "scaled_linear" | "linear" | "flow_match";
    train_steps: number;
    beta_start?: number;
    beta_end?: number;
    shift?: number;
  };
  /** Text encoder: prompt length in tokens and width of each output embedding. */
  text: { max_tokens: number; hidden: number };
  /** File names, relative to config.json, of the four ONNX graphs and the tokenizer. */
  files: {
    text_encoder: string;
    /** The UNet graph (UNet models). */
    unet?: string;
    /** The transformer graph (DiT models). */
    transformer?: string;
    vae_decoder: string;
    vae_encoder: string;
    tokenizer: string;
  };
  /** Names of the UNet graph's latent, timestep and context inputs and of its output. */
  unet_inputs?: DenoiserInputs;
  /** The same for the transformer graph (DiT models). */
  transformer_inputs?: DenoiserInputs;
  /** DiT: latent patch side (image tokens = (latent_size / patch_size)²). */
  patch_size?: number;
  /** DiT: `[start, end)` of the text and image tokens in the joint attention sequence. */
  tokens?: { text: [number, number]; image: [number, number] };
  /**
   * Attention layers in forward order: module, kind (UNet self/cross; DiT joint = MMDiT
   * double-stream, single = single-stream), grid side, heads, head width.
   */
  attention_layers: {
    name: string;
    kind: "self" | "cross" | "joint" | "single";
    resolution: number;
    heads: number;
    head_dim: number;
  }[];
  /** Optimiser steps the exported (EMA) diffusion weights were trained for. */
  training: { steps: number };
}

/** Input and output names of a denoiser graph in config.json. */
export interface DenoiserInputs {
  /** The noisy latent input `[B, C, h, w]`. */
  sample: string;
  /** The timestep input. */
  timestep: string;
  /** The text-conditioning input `[B, L, D]`. */
  encoder_hidden_states: string;
  /** The model output (noise or velocity). */
  output: string;
}

/** Where the shipped weights live, relative to this module. */
export const SHAPES_WEIGHTS: URL = new URL("../../weights/shapes/", import.meta.url);

/** Where the shipped DiT (MMDiT-style rectified-flow transformer) lives, relative to this module. */
export const SHAPES_DIT_WEIGHTS: URL = new URL("../../weights/shapes-dit/", import.meta.url);

/** Options for {@link loadShapesModel}. */
export interface LoadShapesOptions {
  /** Directory (path or URL) holding config.json and the ONNX files; default the shipped weights. */
  dir?: string | URL;
  /** onnxruntime session options (execution providers, threads). */
  session?: CreateSessionOptions;
}

function dirUrl(dir: string | URL): URL {
  if (dir instanceof URL) return dir;
  const withSlash = dir.endsWith("/") ? dir : `${dir}/`;
  return /^[a-z]+:/i.test(withSlash)
    ? new URL(withSlash)
    : new URL(withSlash, `file://${Deno.cwd()}/`);
}

async function session(url: URL, opts: CreateSessionOptions): Promise<Session> {
  const bytes = await readBytes(url);
  decodeModel(bytes, url.pathname); // a clear error for a truncated or corrupt file
  return createSession(bytes, { ...opts, source: url.pathname });
}

/** Loads the embedded shapes model (or one with the same layout from `opts.dir`). */
export async function loadShapesModel(opts: LoadShapesOptions = {}): Promise<DiffusionModel> {
  const base = dirUrl(opts.dir ?? SHAPES_WEIGHTS);
  const config = await readJson<ShapesConfig>(new URL("config.json", base));
  const tok = await readJson<
    { vocab: string[]; max_length: number; sot: number; eot: number; pad: number }
  >(
    new URL(config.files.tokenizer, base),
  );
  const tokenizer = wordTokenizer(tok.vocab, {
    maxLength: tok.max_length,
    sot: tok.sot,
    eot: tok.eot,
    pad: tok.pad,
  });
  const so = opts.session ?? {};
  const file = config.files.unet ?? config.files.transformer;
  const io = config.unet_inputs ?? config.transformer_inputs;
  check(file !== undefined, "config.json", "files has neither unet nor transformer");
  check(io !== undefined, "config.json", "has neither unet_inputs nor transformer_inputs");
  const unetUrl = new URL(file, base);
  // The config's token layout: the fallback when the graph does not show the joint attention.
  const joint = config.tokens
    ? {
      textFirst: config.tokens.text[0] === 0,
      blocks: config.attention_layers.map((l) =>
        l.kind === "joint" ? "double" as const : l.kind === "single" ? "single" as const : null
      ),
    }
    : undefined;
  const [text, decoder, denoiser] = await Promise.all([
    session(new URL(config.files.text_encoder, base), so),
    session(new URL(config.files.vae_decoder, base), so),
    readBytes(unetUrl).then((b) =>
      loadDenoiser(b, {
        sample: io.sample,
        timestep: io.timestep,
        context: io.encoder_hidden_states,
        output: io.output,
      }, { ...so, source: unetUrl.pathname, joint })
    ),
  ]);
  const s = config.latent_size;
  return {
    info: {
      name: config.name,
      latentShape: [config.latent_channels, s, s],
      imageSize: [config.image_size, config.image_size],
      scaleFactor: config.scale_factor,
      trainSteps: config.schedule.train_steps,
      betaSchedule: {
        kind: config.schedule.kind === "linear" ? "linear" : "scaled_linear",
        betaStart: config.schedule.beta_start ?? 0.00085,
        betaEnd: config.schedule.beta_end ?? 0.012,
      },
      prediction: config.prediction,
      ...(config.prediction === "flow" ? { flowShift: config.schedule.shift ?? 1 } : {}),
      nouns: CLASSES,
      attributes: COLOURS,
    },
    tokenizer,
    encodeText(prompts: readonly string[]): Promise<Tensor> {
      check(prompts.length > 0, "prompts", "need at least one prompt");
      const L = tok.max_length;
      const ids = new Int32Array(prompts.length * L);
      prompts.forEach((p, i) => ids.set(tokenizer.tokenize(p).ids, i * L));
      return runTextEncoder(text, ids, prompts.length, L);
    },
    denoise(latents, timestep, context, o) {
      return denoiser.run(latents, timestep, context, o?.taps ?? false, o?.bias);
    },
    gradient(latents, timestep, context, tapGrads) {
      return denoiser.gradient(latents, timestep, context, tapGrads);
    },
    decode(latents: Tensor): Promise<Tensor> {
      return runDecoder(decoder, latents);
    },
    async release() {
      await Promise.all([text.release(), decoder.release(), denoiser.release()]);
    },
  };
}
