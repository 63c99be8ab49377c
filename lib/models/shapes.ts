/**
 * The embedded default model: a small latent diffusion model of the shapes world, trained by
 * `weights/recipe/` and shipped in `weights/shapes/` (text encoder, UNet, VAE decoder and
 * encoder as ONNX, `config.json`, `tokenizer.json`). `loadShapesModel()` needs no network.
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
  /** What the UNet predicts: the added noise (`epsilon`) or the velocity (`v`). */
  prediction: "epsilon" | "v";
  /** Training noise schedule: beta curve, training timesteps T and the β range. */
  schedule: {
    kind: "scaled_linear" | "linear";
    train_steps: number;
    beta_start: number;
    beta_end: number;
  };
  /** Text encoder: prompt length in tokens and width of each output embedding. */
  text: { max_tokens: number; hidden: number };
  /** File names, relative to config.json, of the four ONNX graphs and the tokenizer. */
  files: {
    text_encoder: string;
    unet: string;
    vae_decoder: string;
    vae_encoder: string;
    tokenizer: string;
  };
  /** Names of the UNet graph's latent, timestep and context inputs and of its output. */
  unet_inputs: { sample: string; timestep: string; encoder_hidden_states: string; output: string };
  /** UNet attention layers in forward order: module, self/cross, grid side, heads, head width. */
  attention_layers: {
    name: string;
    kind: "self" | "cross";
    resolution: number;
    heads: number;
    head_dim: number;
  }[];
  /** Optimiser steps the exported (EMA) diffusion weights were trained for. */
  training: { steps: number };
}

/** Where the shipped weights live, relative to this module. */
export const SHAPES_WEIGHTS: URL = new URL("../../weights/shapes/", import.meta.url);

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
  const unetUrl = new URL(config.files.unet, base);
  const [text, decoder, denoiser] = await Promise.all([
    session(new URL(config.files.text_encoder, base), so),
    session(new URL(config.files.vae_decoder, base), so),
    readBytes(unetUrl).then((b) =>
      loadDenoiser(b, {
        sample: config.unet_inputs.sample,
        timestep: config.unet_inputs.timestep,
        context: config.unet_inputs.encoder_hidden_states,
        output: config.unet_inputs.output,
      }, { ...so, source: unetUrl.pathname })
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
        kind: config.schedule.kind,
        betaStart: config.schedule.beta_start,
        betaEnd: config.schedule.beta_end,
      },
      prediction: config.prediction,
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
      const maps = o?.maps ? (o.grad ? "grad" : true) : false;
      return denoiser.run(latents, timestep, context, o?.taps ?? false, o?.bias, maps);
    },
    gradient(latents, timestep, context, tapGrads) {
      return denoiser.gradient(latents, timestep, context, tapGrads);
    },
    gradientFromMaps(latents, timestep, context, mapGrads) {
      return denoiser.gradientFromMaps(latents, timestep, context, mapGrads);
    },
    decode(latents: Tensor): Promise<Tensor> {
      return runDecoder(decoder, latents);
    },
    async release() {
      await Promise.all([text.release(), decoder.release(), denoiser.release()]);
    },
  };
}
