/**
 * Loads a Stable Diffusion 1.5-class pipeline in the Hugging Face ONNX layout from a directory
 * or an http(s) base URL: files (downloaded once into the cache, with progress and optional
 * sha256s from a manifest), the scheduler config, the CLIP tokenizer, and onnxruntime-web
 * sessions for the text encoder, UNet and VAE.
 *
 * Sessions are made by one {@link SessionFactory} (default: `createSession` of `lib/onnx/ort.ts`,
 * wasm EP), so a runtime can swap execution providers or wrap the models (hooks) without
 * touching the loader. The UNet is created first: wasm memory only grows, so the largest model
 * goes in while the heap is still empty.
 *
 * @module
 */
import { AttnkitError, check } from "../errors.ts";
import {
  resolveSchedulerConfig,
  type SchedulerSpec,
  SUPPORTED_SCHEDULERS,
} from "../samplers/scheduler_config.ts";
import { createSession, type CreateSessionOptions, type Session } from "../onnx/ort.ts";
import {
  type ClipTokenizer,
  type ClipTokenizerOptions,
  loadClipTokenizer,
} from "./clip_tokenizer.ts";
import { fetchToCache, HttpStatusError, progressBar, type ProgressCallback } from "./download.ts";
import {
  type FileGetter,
  localFileGetter,
  type OnnxModelFiles,
  resolveSd15Layout,
  type Sd15Files,
} from "./hf_layout.ts";
import { checkFinalAlphaBar, configReader, MAX_TRAIN_STEPS } from "./config_values.ts";
import { MAX_ONNX_BYTES, modelRoot, readFileChecked, readTextChecked, redactUrl } from "./root.ts";

/** The noise-schedule settings of `scheduler/scheduler_config.json` (diffusers names, camelCase). */
export interface SchedulerConfig {
  /** diffusers scheduler class (`PNDMScheduler`, `DDIMScheduler`, …). */
  className: string;
  /** How betas run from `betaStart` to `betaEnd`. */
  betaSchedule: "linear" | "scaled_linear" | "squaredcos_cap_v2" | "sigmoid" | "laplace";
  /** First beta. */
  betaStart: number;
  /** Last beta. */
  betaEnd: number;
  /** Training timesteps (1000 for SD). */
  numTrainTimesteps: number;
  /** Offset added to inference timesteps (1 for SD 1.5). */
  stepsOffset: number;
  /** What the UNet predicts. */
  predictionType: "epsilon" | "v_prediction" | "sample";
  /** Inference timestep spacing (`leading` when the config predates the option). */
  timestepSpacing: string;
  /** Explicit betas overriding the schedule, when given. */
  trainedBetas?: number[];
  /** Whether x0 predictions are clipped. */
  clipSample: boolean;
  /** Whether the final alpha-bar is forced to 1 (DDIM/PNDM). */
  setAlphaToOne: boolean;
  /** The whole JSON object as read. */
  raw: Record<string, unknown>;
  /**
   * The config checked and resolved with the named class's own defaults (what
   * `samplerFromConfig` runs; authoritative where it differs from the fields above, which use
   * class-agnostic defaults). Absent when attnkit has no sampler for the class.
   */
  spec?: SchedulerSpec;
}

/**
 * Reads a diffusers scheduler config, with diffusers' defaults for missing keys. Every number is
 * type- and range-checked with its key named (`num_train_timesteps` an integer in
 * [1, 100000], betas in (0, 1) with `beta_start <= beta_end`, `steps_offset` below the horizon);
 * every value is also checked by `resolveSchedulerConfig` when attnkit runs the class (an unknown
 * value throws an AttnkitError naming its key; a config without `_class_name` is read as
 * DDPMScheduler's).
 *
 * @example
 * ```ts
 * import { parseSchedulerConfig } from "./sd15.ts";
 * parseSchedulerConfig({ num_train_timesteps: 1000, beta_schedule: "scaled_linear" });
 * ```
 */
export function parseSchedulerConfig(raw: Record<string, unknown>): SchedulerConfig {
  const A = "scheduler_config.json";
  const c = configReader(raw, A);
  const betaSchedule = c.oneOf(
    "beta_schedule",
    ["linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid", "laplace"] as const,
    "linear",
  );
  const predictionType = c.oneOf(
    "prediction_type",
    ["epsilon", "v_prediction", "sample"] as const,
    "epsilon",
  );
  const numTrainTimesteps = c.int("num_train_timesteps", 1, MAX_TRAIN_STEPS, 1000);
  const betaStart = c.num("beta_start", 0, 1, 0.0001, true);
  const betaEnd = c.num("beta_end", 0, 1, 0.02, true);
  check(
    betaStart <= betaEnd,
    A,
    `beta_start (${betaStart}) must not exceed beta_end (${betaEnd})`,
  );
  const config: SchedulerConfig = {
    className: String(raw["_class_name"] ?? "DDPMScheduler"),
    betaSchedule,
    betaStart,
    betaEnd,
    numTrainTimesteps,
    stepsOffset: c.int("steps_offset", 0, numTrainTimesteps - 1, 0),
    predictionType,
    timestepSpacing: String(raw["timestep_spacing"] ?? "leading"),
    clipSample: raw["clip_sample"] === true,
    setAlphaToOne: raw["set_alpha_to_one"] === true,
    raw,
  };
  const trained = raw["trained_betas"];
  if (trained !== undefined && trained !== null) {
    check(
      Array.isArray(trained) && trained.length === config.numTrainTimesteps &&
        trained.every((b) => typeof b === "number" && b > 0 && b < 1),
      A,
      `trained_betas must be ${config.numTrainTimesteps} numbers in (0, 1)`,
    );
    config.trainedBetas = trained as number[];
  } else if (betaSchedule !== "squaredcos_cap_v2") {
    checkFinalAlphaBar(betaSchedule, betaStart, betaEnd, numTrainTimesteps, A, "");
  }
  const cls = typeof raw["_class_name"] === "string" ? raw["_class_name"] : "DDPMScheduler";
  if (SUPPORTED_SCHEDULERS.includes(cls)) {
    config.spec = resolveSchedulerConfig(raw, { className: cls, source: A });
  }
  return config;
}

/** sha256 (and size) of each file, keyed by the path relative to the model root. */
export interface Sd15Manifest {
  /** `{"unet/model.onnx": {sha256: "…", size: 123}}`. */
  files: Record<string, { sha256: string; size?: number }>;
}

/** Makes an inference session from model bytes and its external weight files. */
export type SessionFactory = (
  bytes: Uint8Array,
  externalData: { path: string; data: Uint8Array }[],
  source: string,
) => Promise<Session>;

/** The default {@link SessionFactory}: `lib/onnx/ort.ts`'s `createSession` with these options. */
export function ortSessionFactory(
  opts: Omit<CreateSessionOptions, "externalData" | "source"> = {},
): SessionFactory {
  return (bytes, externalData, source) => createSession(bytes, { ...opts, externalData, source });
}

/** Options for {@link loadSd15}. */
export interface LoadSd15Options {
  /** Cache for downloads (default `$ATTNKIT_CACHE` or `~/.cache/attnkit`). */
  cacheDir?: string;
  /**
   * Checksums for downloads: a manifest object, or its path relative to the source (e.g.
   * `"manifest.json"`). Files it lists are verified; for a local directory it is not used.
   */
  manifest?: Sd15Manifest | string;
  /** Per-file download progress in bytes (default: none). */
  onProgress?: (file: string, done: number, total: number | undefined) => void;
  /** Draw a stderr bar per downloaded file (default false: the library never writes unasked). */
  progress?: boolean;
  /** Aborts downloads (partial files stay for a later resume). */
  signal?: AbortSignal;
  /** Resumes per file after a dropped connection (default 3). */
  retries?: number;
  /** Extra request headers (e.g. `Authorization`). */
  headers?: HeadersInit;
  /** Execution providers for the default session factory (default `["wasm"]`). */
  executionProviders?: ("wasm" | "webgpu")[];
  /** Replaces session creation entirely (other EPs, wrapped models). */
  createSession?: SessionFactory;
  /** Overrides for the tokenizer (e.g. `truncate: true`). */
  tokenizer?: ClipTokenizerOptions;
  /** Create the VAE-encoder session when the pipeline has one (default true). */
  vaeEncoder?: boolean;
}

/** Pipeline-level settings read from the model's files. */
export interface Sd15Config {
  /** `_class_name` of model_index.json. */
  pipelineClass: string;
  /** The noise schedule. */
  scheduler: SchedulerConfig;
  /** Element type of the UNet's `timestep` input (`int64` for most SD 1.5 exports). */
  timestepType: string;
  /** Width of the text encoder's hidden states, when the UNet declares it. */
  contextDim?: number;
  /** model_index.json as read. */
  modelIndex: Record<string, unknown>;
}

/** A loaded pipeline. */
export interface Sd15Model {
  /** Configuration read from the files. */
  config: Sd15Config;
  /** The CLIP tokenizer. */
  tokenizer: ClipTokenizer;
  /** `input_ids` → `last_hidden_state`. */
  textEncoder: Session;
  /** `sample`, `timestep`, `encoder_hidden_states` → `out_sample`. */
  unet: Session;
  /** `latent_sample` → `sample`. */
  vaeDecoder: Session;
  /** `sample` → latents, when the pipeline has an encoder. */
  vaeEncoder?: Session;
  /** Where every file is on disk, with each model's inputs and outputs. */
  files: Sd15Files;
}

/** Whether a source string is an http(s) URL (else a directory). */
export function isUrl(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

/** A {@link FileGetter} that downloads `base + rel` into the cache; 404 means absent. */
export function remoteFileGetter(
  base: string,
  opts: LoadSd15Options,
  manifest?: Sd15Manifest,
): FileGetter {
  // Every file is a confined URL under the root, so headers (credentials) only ever go to the
  // root's own origin.
  const root = modelRoot(base);
  return async (rel) => {
    const url = root.url(rel, rel);
    const onProgress: ProgressCallback = opts.onProgress
      ? (done, total) => opts.onProgress!(rel, done, total)
      : progressBar(rel, { enabled: opts.progress === true });
    try {
      return await fetchToCache(url.href, {
        cacheDir: opts.cacheDir,
        sha256: manifest?.files[rel]?.sha256,
        onProgress,
        signal: opts.signal,
        retries: opts.retries,
        headers: opts.headers,
      });
    } catch (e) {
      if (e instanceof HttpStatusError && e.status === 404) return undefined;
      throw e;
    }
  };
}

function checkManifest(value: unknown, source: string): Sd15Manifest {
  const files = (value as { files?: unknown } | null)?.files;
  check(
    !!files && typeof files === "object" && !Array.isArray(files),
    "manifest",
    `${source} must be {"files": {"path": {"sha256": "…"}}}`,
  );
  for (const [rel, entry] of Object.entries(files as Record<string, unknown>)) {
    check(
      typeof (entry as { sha256?: unknown })?.sha256 === "string",
      "manifest",
      `${source}: entry ${rel} has no sha256 string`,
    );
  }
  return value as Sd15Manifest;
}

async function readJson(path: string, what: string): Promise<Record<string, unknown>> {
  try {
    return JSON.parse(await readTextChecked(path, what));
  } catch (e) {
    throw new AttnkitError(what, `cannot read ${path} as JSON: ${(e as Error).message}`);
  }
}

/**
 * Resolves the files of a pipeline (downloading when `source` is a URL) without making sessions.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { models } from "@attnkit/attnkit";
 * // A random-weight SD 1.5 layout (tests/fixtures/make_hf_tiny.py).
 * const folder = new URL("../../tests/fixtures/hf_tiny/", import.meta.url).pathname;
 * const files = await models.resolveSd15Files(folder);
 * assert.deepEqual(files.textEncoder.inputs[0], {
 *   name: "input_ids",
 *   type: "int32",
 *   shape: ["batch", 77],
 * });
 * assert.ok(files.unet.externalData.length > 0); // unet/model.onnx_data
 * ```
 */
export async function resolveSd15Files(
  source: string,
  opts: LoadSd15Options = {},
): Promise<Sd15Files> {
  check(typeof source === "string" && source !== "", "source", "expected a directory or URL");
  if (!isUrl(source)) {
    let stat: Deno.FileInfo;
    try {
      stat = await Deno.stat(source);
    } catch {
      throw new AttnkitError("source", `${source} is neither an http(s) URL nor a directory`);
    }
    check(stat.isDirectory, "source", `${source} is not a directory`);
    return await resolveSd15Layout(source, localFileGetter(source));
  }
  const base = source.endsWith("/") ? source : source + "/";
  let manifest: Sd15Manifest | undefined;
  if (typeof opts.manifest === "string") {
    const url = modelRoot(base).url(opts.manifest, "manifest").href;
    const path = await fetchToCache(url, {
      cacheDir: opts.cacheDir,
      signal: opts.signal,
      headers: opts.headers,
    });
    manifest = checkManifest(await readJson(path, "manifest"), url);
  } else if (opts.manifest) {
    manifest = checkManifest(opts.manifest, "manifest");
  }
  // The root as messages and model names show it: no userinfo (credentials go in `headers`).
  return await resolveSd15Layout(redactUrl(base), remoteFileGetter(base, opts, manifest));
}

/**
 * Checks that the tokenizer's length matches the text encoder's `input_ids` length when the
 * graph fixes it: transformers' `model_max_length` of 4096 against a 77-token CLIP encoder would
 * otherwise fail inside onnxruntime at the first prompt (issue 10, F14).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { models } from "@attnkit/attnkit";
 * import { checkTokenLength } from "./sd15.ts";
 * import type { Sd15Files } from "./hf_layout.ts";
 * const vocab = { "<|startoftext|>": 0, "<|endoftext|>": 1, "cat</w>": 2 };
 * const tokenizer = models.createClipTokenizer(vocab, [], { maxLength: 4096 });
 * // Only the text encoder's input signature is read: input_ids [1, 77].
 * const files = {
 *   root: "sd15/",
 *   textEncoder: { inputs: [{ name: "input_ids", type: "int32", shape: [1, 77] }] },
 * } as unknown as Sd15Files;
 * let message = "";
 * try {
 *   checkTokenLength(files, tokenizer); // throws when tokenizer_config.json disagrees with the graph
 * } catch (e) {
 *   message = String(e); // … the tokenizer pads to 4096 tokens, but text_encoder/model.onnx takes 77 …
 * }
 * assert(message.includes("4096") && message.includes("77"));
 * checkTokenLength(files, models.createClipTokenizer(vocab, [], { maxLength: 77 })); // agrees
 * ```
 */
export function checkTokenLength(files: Sd15Files, tokenizer: ClipTokenizer): void {
  const ids = files.textEncoder.inputs[0];
  check(!!ids, "text_encoder/model.onnx", `has no graph input (${files.root})`);
  const L = ids.shape[1];
  check(
    typeof L !== "number" || L <= 0 || L === tokenizer.maxLength,
    "tokenizer/tokenizer_config.json model_max_length",
    () =>
      `the tokenizer pads to ${tokenizer.maxLength} tokens, but text_encoder/model.onnx takes ` +
      `${L} (input ${ids.name}) in ${files.root}`,
  );
}

async function sessionFor(
  files: OnnxModelFiles,
  rel: string,
  factory: SessionFactory,
): Promise<Session> {
  const real = files.local ? "real" : undefined;
  const bytes = files.bytes ??
    await readFileChecked(files.model, files.model, MAX_ONNX_BYTES, real);
  const external = await Promise.all(
    files.externalData.map(async (e) => ({
      path: e.location,
      data: await readFileChecked(e.path, `${files.model} external data`, undefined, real),
    })),
  );
  return await factory(bytes, external, rel);
}

/**
 * Loads an SD 1.5-class pipeline from a directory or an http(s) base URL (Hugging Face layout;
 * for a Hub repository use `https://huggingface.co/<org>/<repo>/resolve/<revision>/`).
 */
export async function loadSd15(source: string, opts: LoadSd15Options = {}): Promise<Sd15Model> {
  const files = await resolveSd15Files(source, opts);
  const modelIndex = await readJson(files.modelIndex, "model_index.json");
  const scheduler = parseSchedulerConfig(
    await readJson(files.schedulerConfig, "scheduler_config.json"),
  );
  const tokenizer = await loadClipTokenizer(files.tokenizer, opts.tokenizer);
  checkTokenLength(files, tokenizer);
  const factory = opts.createSession ??
    ortSessionFactory(
      opts.executionProviders ? { executionProviders: opts.executionProviders } : {},
    );
  const timestep = files.unet.inputs.find((i) => i.name === "timestep");
  const context = files.unet.inputs.find((i) => i.name === "encoder_hidden_states");
  const contextDim = context?.shape[2];
  const unet = await sessionFor(files.unet, "unet/model.onnx", factory);
  const textEncoder = await sessionFor(files.textEncoder, "text_encoder/model.onnx", factory);
  const vaeDecoder = await sessionFor(files.vaeDecoder, "vae_decoder/model.onnx", factory);
  const model: Sd15Model = {
    config: {
      pipelineClass: String(modelIndex["_class_name"] ?? ""),
      scheduler,
      timestepType: timestep?.type ?? "unknown",
      modelIndex,
    },
    tokenizer,
    textEncoder,
    unet,
    vaeDecoder,
    files,
  };
  if (typeof contextDim === "number") model.config.contextDim = contextDim;
  if (files.vaeEncoder && opts.vaeEncoder !== false) {
    model.vaeEncoder = await sessionFor(files.vaeEncoder, "vae_encoder/model.onnx", factory);
  }
  return model;
}

/** Releases every session of a loaded pipeline. */
export async function releaseSd15(model: Sd15Model): Promise<void> {
  for (const s of [model.unet, model.textEncoder, model.vaeDecoder, model.vaeEncoder]) {
    if (s) await s.release();
  }
}
