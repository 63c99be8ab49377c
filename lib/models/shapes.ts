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
import { AttnkitError, check } from "../errors.ts";
import { allOrRelease, createSession, type CreateSessionOptions } from "../onnx/ort.ts";
import { loadDenoiser } from "../runtime/denoiser.ts";
import type { DiffusionModel } from "../runtime/model.ts";
import { checkedModel } from "../runtime/checked_model.ts";
import type { Tensor } from "../tensor.ts";
import { runDecoder, runTextEncoder } from "../runtime/sessions.ts";
import { wordTokenizer } from "../prompt/word_tokenizer.ts";
import { CLASSES, COLOURS } from "../shapes/world.ts";
import {
  type ModelRoot,
  modelRoot,
  type ModelRootOptions,
  type OnnxFile,
  readOnnx,
} from "./root.ts";
import { parseShapesConfig, parseShapesTokenizer } from "./shapes_config.ts";
import { modelInputs, modelOutputs } from "./hf_layout.ts";

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
  /** Size cap per file and, for URL roots, timeouts and redirects ({@link ModelRootOptions}). */
  limits?: ModelRootOptions;
}

/** `what` for errors about a file named by `config.json` `files.<key>`. */
const named = (key: string): string => `config.json files.${key}`;

/** Checks that `name` is a graph input (or output) of `file`, naming the config key otherwise. */
function expectIo(file: OnnxFile, name: string, key: string, outputs = false): void {
  const have = (outputs ? modelOutputs(file.model) : modelInputs(file.model)).map((v) => v.name);
  if (!have.includes(name)) {
    throw new AttnkitError(
      `config.json ${key}`,
      `${JSON.stringify(name)} is not a graph ${outputs ? "output" : "input"} of ${file.entry} ` +
        `(it has ${have.map((n) => JSON.stringify(n)).join(", ") || "none"})`,
    );
  }
}

/** The fixed size of axis `axis` of input `name`, when the graph declares one. */
function fixedDim(file: OnnxFile, name: string, axis: number): number | undefined {
  const d = modelInputs(file.model).find((v) => v.name === name)?.shape[axis];
  return typeof d === "number" && d > 0 ? d : undefined;
}

async function session(root: ModelRoot, file: OnnxFile, opts: CreateSessionOptions) {
  return await createSession(file.bytes, {
    ...opts,
    externalData: file.externalData,
    source: `${root.label}${file.entry}`,
  });
}

/**
 * Loads the embedded shapes model (or one with the same layout from `opts.dir`). Every file
 * `config.json` names is confined to the folder (or URL prefix) by {@link modelRoot}; every
 * number it gives is checked ({@link parseShapesConfig}); the returned model checks its inputs
 * and outputs for non-finite values ({@link checkedModel}).
 *
 * @example
 * ```ts
 * const model = await loadShapesModel();
 * const ctx = await model.encodeText(["a photo of three yellow hearts"]);
 * await model.release();
 * ```
 */
export async function loadShapesModel(opts: LoadShapesOptions = {}): Promise<DiffusionModel> {
  check(
    opts !== null && typeof opts === "object" && !Array.isArray(opts),
    "opts",
    `expected an options object ({dir, session, limits}), got ${JSON.stringify(opts)}`,
  );
  const root = modelRoot(opts.dir ?? SHAPES_WEIGHTS, opts.limits);
  const config = parseShapesConfig(await root.readJsonObject("config.json", "config.json"));
  const tok = parseShapesTokenizer(
    await root.readJsonObject(config.files.tokenizer, named("tokenizer")),
    config.files.tokenizer,
  );
  check(
    tok.max_length === config.text.max_tokens,
    `${config.files.tokenizer} max_length`,
    `${tok.max_length} differs from config.json text.max_tokens (${config.text.max_tokens})`,
  );
  const tokenizer = wordTokenizer(tok.vocab, {
    maxLength: tok.max_length,
    sot: tok.sot,
    eot: tok.eot,
    pad: tok.pad,
  });
  const so = opts.session ?? {};
  // A UNet (files.unet + unet_inputs) or a DiT (files.transformer + transformer_inputs); the
  // config parser has checked that exactly one is present.
  const denoiserKey = config.files.unet !== undefined ? "unet" : "transformer";
  const inputsKey = `${denoiserKey}_inputs`;
  const io = (config.unet_inputs ?? config.transformer_inputs)!;
  // The config's token layout: the fallback when the graph does not show the joint attention.
  const joint = config.tokens
    ? {
      textFirst: config.tokens.text[0] === 0,
      blocks: config.attention_layers.map((l) =>
        l.kind === "joint" ? "double" as const : l.kind === "single" ? "single" as const : null
      ),
    }
    : undefined;
  const [textFile, decoderFile, unetFile] = await Promise.all([
    readOnnx(root, config.files.text_encoder, named("text_encoder")),
    readOnnx(root, config.files.vae_decoder, named("vae_decoder")),
    readOnnx(root, (config.files.unet ?? config.files.transformer)!, named(denoiserKey)),
  ]);
  expectIo(unetFile, io.sample, `${inputsKey}.sample`);
  expectIo(unetFile, io.timestep, `${inputsKey}.timestep`);
  expectIo(unetFile, io.encoder_hidden_states, `${inputsKey}.encoder_hidden_states`);
  expectIo(unetFile, io.output, `${inputsKey}.output`, true);
  const ids = modelInputs(textFile.model)[0];
  check(ids !== undefined, named("text_encoder"), `${textFile.entry} has no graph input`);
  const encoderLength = fixedDim(textFile, ids.name, 1);
  check(
    encoderLength === undefined || encoderLength === tok.max_length,
    `${config.files.tokenizer} max_length`,
    `${tok.max_length} tokens, but ${textFile.entry} takes ${encoderLength} (input ${ids.name})`,
  );
  const s = config.latent_size;
  const C = config.latent_channels;
  for (const [axis, want, key] of [[1, C, "latent_channels"], [2, s, "latent_size"]] as const) {
    const got = fixedDim(unetFile, io.sample, axis);
    check(
      got === undefined || got === want,
      `config.json ${key}`,
      `${want} differs from ${unetFile.entry}'s ${io.sample} input (axis ${axis} is ${got})`,
    );
  }
  // image_size must be what the decoder makes: checked here when its graph fixes the size, and
  // on every decode otherwise.
  const decoderOut = modelOutputs(decoderFile.model)[0];
  for (const axis of [2, 3]) {
    const d = decoderOut?.shape[axis];
    check(
      typeof d !== "number" || d <= 0 || d === config.image_size,
      "config.json image_size",
      () =>
        `${config.image_size} differs from ${decoderFile.entry}'s output ${decoderOut?.name} ` +
        `(axis ${axis} is ${d})`,
    );
  }
  const [text, decoder, denoiser] = await allOrRelease([
    () => session(root, textFile, so),
    () => session(root, decoderFile, so),
    () =>
      loadDenoiser(unetFile.bytes, {
        sample: io.sample,
        timestep: io.timestep,
        context: io.encoder_hidden_states,
        output: io.output,
      }, {
        ...so,
        externalData: unetFile.externalData,
        source: `${root.label}${unetFile.entry}`,
        joint,
      }),
  ]);
  const model: DiffusionModel = {
    info: {
      name: config.name,
      latentShape: [C, s, s],
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
      const maps = o?.maps ? (o.grad ? "grad" : true) : false;
      return denoiser.run(latents, timestep, context, o?.taps ?? false, o?.bias, maps);
    },
    gradient(latents, timestep, context, tapGrads) {
      return denoiser.gradient(latents, timestep, context, tapGrads);
    },
    // Only where the denoiser makes maps in its graph; otherwise controls take the Q/K route.
    gradientFromMaps: denoiser.mapsInGraph
      ? (latents, timestep, context, mapGrads) =>
        denoiser.gradientFromMaps(latents, timestep, context, mapGrads)
      : undefined,
    async decode(latents: Tensor): Promise<Tensor> {
      const image = await runDecoder(decoder, latents);
      const [h, w] = image.shape.slice(2);
      check(
        h === config.image_size && w === config.image_size,
        "config.json image_size",
        () => `${config.image_size}, but ${decoderFile.entry} made images of ${h}×${w}`,
      );
      return image;
    },
    async release() {
      await Promise.all([text.release(), decoder.release(), denoiser.release()]);
    },
  };
  return checkedModel(model, {
    textEncoder: `${root.label}${textFile.entry}`,
    unet: `${root.label}${unetFile.entry}`,
    decoder: `${root.label}${decoderFile.entry}`,
  });
}
