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
  // A UNet names files.unet and unet_inputs; a DiT files.transformer and transformer_inputs.
  const hasUnet = files.has("unet"), hasTransformer = files.has("transformer");
  if (hasUnet === hasTransformer) {
    throw new AttnkitError(
      file,
      hasUnet
        ? "files names both unet and transformer; a model has one denoiser"
        : "files.unet is missing (a DiT names files.transformer instead)",
    );
  }
  const inputsKey = hasUnet ? "unet_inputs" : "transformer_inputs";
  const io = c.obj(inputsKey);
  const layers = c.raw("attention_layers");
  if (layers !== undefined && !Array.isArray(layers)) {
    throw new AttnkitError(
      file,
      `attention_layers must be an array, got ${JSON.stringify(layers)}`,
    );
  }
  const prediction = c.oneOf("prediction", ["epsilon", "v", "flow"] as const);
  const kind = schedule.oneOf(
    "kind",
    (prediction === "flow" ? ["flow_match"] : ["scaled_linear", "linear"]) as readonly (
      | "scaled_linear"
      | "linear"
      | "flow_match"
    )[],
  );
  const trainSteps = schedule.int("train_steps", 1, MAX_TRAIN_STEPS);
  let betas: { beta_start?: number; beta_end?: number; shift?: number };
  if (kind === "flow_match") {
    betas = { shift: schedule.num("shift", 0, 100, 1, true) };
  } else {
    const betaStart = schedule.num("beta_start", 0, 1, undefined, true);
    const betaEnd = schedule.num("beta_end", 0, 1, undefined, true);
    if (betaStart > betaEnd) {
      throw new AttnkitError(
        file,
        `schedule.beta_start (${betaStart}) must not exceed schedule.beta_end (${betaEnd})`,
      );
    }
    checkFinalAlphaBar(kind, betaStart, betaEnd, trainSteps, file, "schedule.");
    betas = { beta_start: betaStart, beta_end: betaEnd };
  }
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
      `${inputsKey}.sample, .timestep and .encoder_hidden_states must name three different graph ` +
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
    prediction,
    schedule: { kind, train_steps: trainSteps, ...betas },
    text: {
      max_tokens: text.int("max_tokens", 2, MAX_TOKENS),
      hidden: text.int("hidden", 1, 65536),
    },
    files: {
      text_encoder: files.str("text_encoder"),
      ...(hasUnet ? { unet: files.str("unet") } : { transformer: files.str("transformer") }),
      vae_decoder: files.str("vae_decoder"),
      vae_encoder: files.str("vae_encoder", "vae_encoder.onnx"),
      tokenizer: files.str("tokenizer"),
    },
    [inputsKey]: unetInputs,
    ...dit(c, file),
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

/** The DiT's token layout and patch size, checked when present. */
function dit(
  c: ReturnType<typeof configReader>,
  file: string,
): Pick<ShapesConfig, "patch_size" | "tokens"> {
  const out: Pick<ShapesConfig, "patch_size" | "tokens"> = {};
  if (c.has("patch_size")) out.patch_size = c.int("patch_size", 1, 64);
  if (c.has("tokens")) {
    const t = c.obj("tokens");
    const range = (key: "text" | "image"): [number, number] => {
      const r = t.raw(key);
      if (
        !Array.isArray(r) || r.length !== 2 || !r.every((v) => Number.isInteger(v) && v >= 0) ||
        r[0] >= r[1]
      ) {
        throw new AttnkitError(
          file,
          `tokens.${key} must be [start, end) with 0 ≤ start < end, got ${JSON.stringify(r)}`,
        );
      }
      return [r[0], r[1]];
    };
    out.tokens = { text: range("text"), image: range("image") };
  }
  return out;
}
