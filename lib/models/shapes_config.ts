/**
 * Validation of the embedded model's `config.json` and `tokenizer.json`: every key the loader
 * uses is type- and range-checked, with the key named in the error, so a string where a number
 * belongs (`"latent_size": "16"`), a missing section (`files`, `unet_inputs`, `schedule`) or an
 * absurd value (`train_steps: 1e10`) fails at load rather than deep inside sampling.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseShapesConfig } from "./shapes_config.ts";
 * const file = new URL("../../weights/shapes/config.json", import.meta.url);
 * const config = parseShapesConfig(JSON.parse(await Deno.readTextFile(file)));
 * assert(config.latent_size === 16);
 * ```
 *
 * @module
 */
import { AttnkitError } from "../errors.ts";
import { checkFinalAlphaBar, configReader, MAX_TOKENS, MAX_TRAIN_STEPS } from "./config_values.ts";
import type { ShapesConfig } from "./shapes.ts";

/**
 * Checks a parsed `config.json` of the shapes layout and returns it typed. Errors name `file`
 * and the key path (`schedule.train_steps`, `files.unet`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseShapesConfig } from "./shapes_config.ts";
 * const file = new URL("../../weights/shapes/config.json", import.meta.url);
 * const config = JSON.parse(await Deno.readTextFile(file));
 * assert(parseShapesConfig(config).latent_size === 16);
 * let message = "";
 * try {
 *   parseShapesConfig({ ...config, latent_size: "16" });
 * } catch (e) {
 *   message = String(e); // AttnkitError: config.json: latent_size must be an integer in [1, 1024], got "16"
 * }
 * assert(message.includes("latent_size"));
 * ```
 */
export function parseShapesConfig(raw: unknown, file = "config.json"): ShapesConfig {
  const c = configReader(raw, file);
  const schedule = c.obj("schedule");
  const text = c.obj("text");
  const files = c.obj("files");
  const io = c.obj("unet_inputs");
  const layers = c.raw("attention_layers");
  if (layers !== undefined && !Array.isArray(layers)) {
    throw new AttnkitError(
      file,
      `attention_layers must be an array, got ${JSON.stringify(layers)}`,
    );
  }
  const betaStart = schedule.num("beta_start", 0, 1, undefined, true);
  const betaEnd = schedule.num("beta_end", 0, 1, undefined, true);
  if (betaStart > betaEnd) {
    throw new AttnkitError(
      file,
      `schedule.beta_start (${betaStart}) must not exceed schedule.beta_end (${betaEnd})`,
    );
  }
  const kind = schedule.oneOf("kind", ["scaled_linear", "linear"] as const);
  const trainSteps = schedule.int("train_steps", 1, MAX_TRAIN_STEPS);
  checkFinalAlphaBar(kind, betaStart, betaEnd, trainSteps, file, "schedule.");
  const name = c.str("name", "shapes-layout model");
  // The name reaches terminals and logs: escape sequences in it are refused, not printed.
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name) || name.length > 256) {
    throw new AttnkitError(
      file,
      `name must be at most 256 characters without control characters, got ${
        JSON.stringify(name.slice(0, 80))
      }`,
    );
  }
  const unetInputs = {
    sample: io.str("sample"),
    timestep: io.str("timestep"),
    encoder_hidden_states: io.str("encoder_hidden_states"),
    output: io.str("output"),
  };
  const names = [unetInputs.sample, unetInputs.timestep, unetInputs.encoder_hidden_states];
  if (new Set(names).size !== names.length) {
    throw new AttnkitError(
      file,
      `unet_inputs.sample, .timestep and .encoder_hidden_states must name three different graph ` +
        `inputs, got ${JSON.stringify(names)}`,
    );
  }
  const training = c.has("training") ? c.obj("training") : undefined;
  return {
    name,
    image_size: c.int("image_size", 8, 8192),
    latent_channels: c.int("latent_channels", 1, 64),
    latent_size: c.int("latent_size", 1, 1024),
    scale_factor: c.num("scale_factor", 0, 1000, undefined, true),
    prediction: c.oneOf("prediction", ["epsilon", "v"] as const),
    schedule: {
      kind,
      train_steps: trainSteps,
      beta_start: betaStart,
      beta_end: betaEnd,
    },
    text: {
      max_tokens: text.int("max_tokens", 2, MAX_TOKENS),
      hidden: text.int("hidden", 1, 65536),
    },
    files: {
      text_encoder: files.str("text_encoder"),
      unet: files.str("unet"),
      vae_decoder: files.str("vae_decoder"),
      vae_encoder: files.str("vae_encoder", "vae_encoder.onnx"),
      tokenizer: files.str("tokenizer"),
    },
    unet_inputs: unetInputs,
    attention_layers: (layers ?? []) as ShapesConfig["attention_layers"],
    training: { steps: training ? training.int("steps", 0, Number.MAX_SAFE_INTEGER, 0) : 0 },
  };
}

/** The word tokenizer file of the shapes layout, checked. */
export interface ShapesTokenizerFile {
  /** Words by id. */
  vocab: string[];
  /** Token length of every prompt (start and end included). */
  max_length: number;
  /** Start-of-text id. */
  sot: number;
  /** End-of-text id. */
  eot: number;
  /** Padding id. */
  pad: number;
}

/**
 * Checks a parsed `tokenizer.json` (ids inside the vocabulary, a sane length).
 *
 * @example
 * ```ts
 * parseShapesTokenizer({ vocab: ["<s>", "</s>", "<pad>"], max_length: 8, sot: 0, eot: 1, pad: 2 });
 * ```
 */
export function parseShapesTokenizer(raw: unknown, file = "tokenizer.json"): ShapesTokenizerFile {
  const t = configReader(raw, file);
  const vocab = t.raw("vocab");
  if (!Array.isArray(vocab) || vocab.length === 0 || !vocab.every((w) => typeof w === "string")) {
    throw new AttnkitError(file, "vocab must be a non-empty array of strings");
  }
  const top = vocab.length - 1;
  return {
    vocab,
    max_length: t.int("max_length", 2, MAX_TOKENS),
    sot: t.int("sot", 0, top),
    eot: t.int("eot", 0, top),
    pad: t.int("pad", 0, top),
  };
}
