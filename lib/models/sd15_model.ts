/**
 * A Stable Diffusion 1.5-class pipeline (Hugging Face ONNX layout) as a {@link DiffusionModel}:
 * the UNet is loaded through the tapped denoiser, so ISAC selection and optimisation, and every
 * other control, run on it exactly as on the embedded model.
 *
 * @module
 */
import { AttnkitError, check } from "../errors.ts";
import { allOrRelease, createSession, type Session } from "../onnx/ort.ts";
import { loadDenoiser } from "../runtime/denoiser.ts";
import type { DiffusionModel } from "../runtime/model.ts";
import { checkedModel } from "../runtime/checked_model.ts";
import type { Tensor } from "../tensor.ts";
import { runDecoder, runTextEncoder } from "../runtime/sessions.ts";
import { loadClipTokenizer } from "./clip_tokenizer.ts";
import type { OnnxModelFiles } from "./hf_layout.ts";
import { MAX_ONNX_BYTES, readFileChecked, readTextChecked } from "./root.ts";
import {
  checkTokenLength,
  type LoadSd15Options,
  parseSchedulerConfig,
  resolveSd15Files,
} from "./sd15.ts";
import { resolveSchedulerConfig } from "../samplers/scheduler_config.ts";

/** Options of {@link loadSd15Model}. */
export interface Sd15ModelOptions extends LoadSd15Options {
  /** Image height and width in pixels (default 512 × 512; latents are 1/8 of it). */
  imageSize?: readonly [number, number];
  /** VAE latent scaling factor (default SD 1.5's 0.18215). */
  scaleFactor?: number;
  /**
   * Run the model's scheduler config with another diffusers scheduler class (e.g.
   * "EulerDiscreteScheduler"), as `Other.from_config(pipe.scheduler.config)` does in diffusers.
   */
  scheduler?: string;
}

async function readModel(
  files: OnnxModelFiles,
): Promise<{ bytes: Uint8Array; external: { path: string; data: Uint8Array }[] }> {
  const real = files.local ? "real" : undefined;
  const bytes = files.bytes ??
    await readFileChecked(files.model, files.model, MAX_ONNX_BYTES, real);
  const external = await Promise.all(
    files.externalData.map(async (e) => ({
      path: e.location,
      data: await readFileChecked(e.path, `${files.model} external data`, undefined, real),
    })),
  );
  return { bytes, external };
}

async function plainSession(
  files: OnnxModelFiles,
  rel: string,
  eps?: ("wasm" | "webgpu")[],
): Promise<Session> {
  const { bytes, external } = await readModel(files);
  return createSession(bytes, { externalData: external, source: rel, executionProviders: eps });
}

/**
 * Loads an SD 1.5-class pipeline (directory or http(s) base URL) as a {@link DiffusionModel}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generate, loadSd15Model } from "@attnkit/attnkit";
 * // A random-weight SD 1.5-layout pipeline (text_encoder/, unet/, vae_decoder/, tokenizer/,
 * // scheduler/) made by tests/fixtures/make_hf_tiny.py; pass the folder of a real one the same way.
 * const folder = new URL("../../tests/fixtures/hf_tiny/", import.meta.url);
 * const model = await loadSd15Model(folder.pathname);
 * try {
 *   assert.equal(model.info.schedulerConfig?._class_name, "PNDMScheduler");
 *   const images = await generate(model, "a cat", { seed: 0, steps: 2 });
 *   assert.equal(images.shape[1], 3);
 * } finally {
 *   await model.release();
 * }
 * ```
 */
export async function loadSd15Model(
  source: string,
  opts: Sd15ModelOptions = {},
): Promise<DiffusionModel> {
  const size = opts.imageSize ?? [512, 512];
  check(
    Array.isArray(size) && size.length === 2,
    "imageSize",
    `expected [height, width], got ${JSON.stringify(size)}`,
  );
  const [H, W] = size;
  check(
    Number.isInteger(H) && Number.isInteger(W) && H % 8 === 0 && W % 8 === 0 && H > 0 &&
      W > 0 && H <= 16384 && W <= 16384,
    "imageSize",
    `must be positive multiples of 8 up to 16384, got ${H}×${W}`,
  );
  const scaleFactor = opts.scaleFactor ?? 0.18215;
  check(
    typeof scaleFactor === "number" && Number.isFinite(scaleFactor) && scaleFactor > 0,
    "scaleFactor",
    `must be a finite positive number, got ${scaleFactor}`,
  );
  const files = await resolveSd15Files(source, opts);
  const schedulerConfig = {
    ...await readJsonFile(files.schedulerConfig),
    ...(opts.scheduler ? { _class_name: opts.scheduler } : {}),
  };
  // Every field is checked now, so a bad value fails at load rather than at the first sample.
  resolveSchedulerConfig(schedulerConfig, { source: "scheduler/scheduler_config.json" });
  const scheduler = parseSchedulerConfig(schedulerConfig);
  const tokenizer = await loadClipTokenizer(files.tokenizer, opts.tokenizer);
  checkTokenLength(files, tokenizer);
  const eps = opts.executionProviders;
  const unetIn = files.unet.inputs.map((i) => i.name);
  // Exports name the inputs sample/timestep/encoder_hidden_states; older ones only order them.
  check(
    unetIn.length >= 3 && files.unet.outputs.length >= 1,
    "unet/model.onnx",
    `has inputs [${unetIn.join(", ")}]; a UNet takes sample, timestep and ` +
      `encoder_hidden_states (is the right file at unet/model.onnx in ${files.root}?)`,
  );
  const pick = (want: string, fallback: number) => unetIn.includes(want) ? want : unetIn[fallback];
  const unet = await readModel(files.unet);
  const [denoiser, text, decoder] = await allOrRelease([
    () =>
      loadDenoiser(unet.bytes, {
        sample: pick("sample", 0),
        timestep: pick("timestep", 1),
        context: pick("encoder_hidden_states", 2),
        output: files.unet.outputs[0].name,
      }, { externalData: unet.external, source: "unet/model.onnx", executionProviders: eps }),
    () => plainSession(files.textEncoder, "text_encoder/model.onnx", eps),
    () => plainSession(files.vaeDecoder, "vae_decoder/model.onnx", eps),
  ]);
  const idsInput = files.textEncoder.inputs[0];
  const latentChannels = files.unet.inputs.find((i) => i.name === pick("sample", 0))?.shape[1];
  const model: DiffusionModel = {
    info: {
      name: `sd15:${files.root}`,
      latentShape: [typeof latentChannels === "number" ? latentChannels : 4, H / 8, W / 8],
      imageSize: [H, W],
      scaleFactor,
      trainSteps: scheduler.numTrainTimesteps,
      betaSchedule: {
        kind: scheduler.betaSchedule,
        betaStart: scheduler.betaStart,
        betaEnd: scheduler.betaEnd,
      },
      prediction: scheduler.predictionType === "v_prediction" ? "v" : scheduler.predictionType,
      schedulerConfig,
    },
    tokenizer,
    encodeText(prompts: readonly string[]): Promise<Tensor> {
      check(prompts.length > 0, "prompts", "need at least one prompt");
      const L = tokenizer.maxLength;
      const flat = prompts.flatMap((p) => [...tokenizer.encode(p)]);
      return runTextEncoder(
        text,
        flat,
        prompts.length,
        L,
        idsInput.type === "int64" ? "int64" : "int32",
      );
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
    decode(latents: Tensor): Promise<Tensor> {
      return runDecoder(decoder, latents);
    },
    async release() {
      await Promise.all([text.release(), decoder.release(), denoiser.release()]);
    },
  };
  return checkedModel(model, {
    textEncoder: "text_encoder/model.onnx",
    unet: "unet/model.onnx",
    decoder: "vae_decoder/model.onnx",
  });
}

async function readJsonFile(path: string): Promise<Record<string, unknown>> {
  try {
    return JSON.parse(await readTextChecked(path, "scheduler/scheduler_config.json"));
  } catch (e) {
    throw new AttnkitError(
      "scheduler/scheduler_config.json",
      `cannot read ${path} as JSON: ${(e as Error).message}`,
    );
  }
}
