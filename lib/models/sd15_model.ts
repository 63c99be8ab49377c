/**
 * A Stable Diffusion 1.5-class pipeline (Hugging Face ONNX layout) as a {@link DiffusionModel}:
 * the UNet is loaded through the tapped denoiser, so ISAC selection and optimisation, and every
 * other control, run on it exactly as on the embedded model.
 *
 * @module
 */
import { check } from "../errors.ts";
import { createSession, type Session } from "../onnx/ort.ts";
import { loadDenoiser } from "../runtime/denoiser.ts";
import type { DiffusionModel } from "../runtime/model.ts";
import type { Tensor } from "../tensor.ts";
import { runDecoder, runTextEncoder } from "../runtime/sessions.ts";
import { loadClipTokenizer } from "./clip_tokenizer.ts";
import type { OnnxModelFiles } from "./hf_layout.ts";
import { type LoadSd15Options, parseSchedulerConfig, resolveSd15Files } from "./sd15.ts";

/** Options of {@link loadSd15Model}. */
export interface Sd15ModelOptions extends LoadSd15Options {
  /** Image height and width in pixels (default 512 × 512; latents are 1/8 of it). */
  imageSize?: readonly [number, number];
  /** VAE latent scaling factor (default SD 1.5's 0.18215). */
  scaleFactor?: number;
}

async function readModel(
  files: OnnxModelFiles,
): Promise<{ bytes: Uint8Array; external: { path: string; data: Uint8Array }[] }> {
  const bytes = await Deno.readFile(files.model);
  const external = await Promise.all(
    files.externalData.map(async (e) => ({ path: e.location, data: await Deno.readFile(e.path) })),
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

/** Loads an SD 1.5-class pipeline (directory or http(s) base URL) as a {@link DiffusionModel}. */
export async function loadSd15Model(
  source: string,
  opts: Sd15ModelOptions = {},
): Promise<DiffusionModel> {
  const [H, W] = opts.imageSize ?? [512, 512];
  check(
    H % 8 === 0 && W % 8 === 0 && H > 0 && W > 0,
    "imageSize",
    `must be positive multiples of 8, got ${H}×${W}`,
  );
  const files = await resolveSd15Files(source, opts);
  const scheduler = parseSchedulerConfig(
    JSON.parse(await Deno.readTextFile(files.schedulerConfig)),
  );
  check(
    scheduler.betaSchedule !== "squaredcos_cap_v2" && scheduler.predictionType !== "sample",
    "scheduler_config.json",
    `beta_schedule ${scheduler.betaSchedule} / prediction_type ${scheduler.predictionType} is not supported ` +
      "(scaled_linear or linear betas with epsilon or v_prediction are)",
  );
  const tokenizer = await loadClipTokenizer(files.tokenizer, opts.tokenizer);
  const eps = opts.executionProviders;
  const unetIn = files.unet.inputs.map((i) => i.name);
  const pick = (want: string, fallback: number) => unetIn.includes(want) ? want : unetIn[fallback];
  const unet = await readModel(files.unet);
  const denoiser = await loadDenoiser(unet.bytes, {
    sample: pick("sample", 0),
    timestep: pick("timestep", 1),
    context: pick("encoder_hidden_states", 2),
    output: files.unet.outputs[0].name,
  }, { externalData: unet.external, source: "unet/model.onnx", executionProviders: eps });
  const text = await plainSession(files.textEncoder, "text_encoder/model.onnx", eps);
  const decoder = await plainSession(files.vaeDecoder, "vae_decoder/model.onnx", eps);
  const idsInput = files.textEncoder.inputs[0];
  const latentChannels = files.unet.inputs.find((i) => i.name === pick("sample", 0))?.shape[1];
  return {
    info: {
      name: `sd15:${files.root}`,
      latentShape: [typeof latentChannels === "number" ? latentChannels : 4, H / 8, W / 8],
      imageSize: [H, W],
      scaleFactor: opts.scaleFactor ?? 0.18215,
      trainSteps: scheduler.numTrainTimesteps,
      betaSchedule: {
        kind: scheduler.betaSchedule === "linear" ? "linear" : "scaled_linear",
        betaStart: scheduler.betaStart,
        betaEnd: scheduler.betaEnd,
      },
      prediction: scheduler.predictionType === "v_prediction" ? "v" : "epsilon",
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
