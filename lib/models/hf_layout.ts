/**
 * The Hugging Face ONNX layout of a Stable Diffusion 1.5-class pipeline (what diffusers'
 * `OnnxStableDiffusionPipeline`, optimum's exporter and the JS runtimes read):
 *
 * ```
 * model_index.json                      scheduler/scheduler_config.json
 * tokenizer/vocab.json, merges.txt      (+ optional tokenizer_config.json, special_tokens_map.json)
 * text_encoder/model.onnx               unet/model.onnx (+ model.onnx_data or weights.pb)
 * vae_decoder/model.onnx                vae_encoder/model.onnx (optional)
 * ```
 *
 * Resolution is independent of where bytes come from: a {@link FileGetter} turns a relative
 * path into a local file (a directory lookup, or a download into the cache). External weight
 * files are not guessed from names: each model's initializers are read and their
 * `external_data` locations listed, so `model.onnx_data`, `weights.pb` or anything else works.
 *
 * @module
 */
import { AttnkitError } from "../errors.ts";
import { decodeModel } from "../onnx/proto.ts";
import { externalDataRefs } from "../onnx/external.ts";
import type { GraphProto, Model, TensorProto, ValueInfoProto } from "../onnx/types.ts";
import type { ClipTokenizerFiles } from "./clip_tokenizer.ts";
import {
  confineEntry,
  MAX_ONNX_BYTES,
  modelRoot,
  readFileChecked,
  readTextChecked,
} from "./root.ts";

/** One file of the layout. */
export interface LayoutEntry {
  /** Path relative to the model root, with `/` separators. */
  path: string;
  /** Whether loading fails without it. */
  required: boolean;
  /** What it is, for messages. */
  what: string;
}

/** The files of the SD 1.5-class Hugging Face ONNX layout (external weights found per model). */
export const SD15_HF_LAYOUT: readonly LayoutEntry[] = [
  { path: "model_index.json", required: true, what: "pipeline index" },
  { path: "scheduler/scheduler_config.json", required: true, what: "noise schedule" },
  { path: "tokenizer/vocab.json", required: true, what: "CLIP vocabulary" },
  { path: "tokenizer/merges.txt", required: true, what: "CLIP BPE merges" },
  { path: "tokenizer/tokenizer_config.json", required: false, what: "tokenizer settings" },
  { path: "tokenizer/special_tokens_map.json", required: false, what: "special tokens" },
  { path: "text_encoder/model.onnx", required: true, what: "CLIP text encoder" },
  { path: "unet/model.onnx", required: true, what: "denoising UNet" },
  { path: "vae_decoder/model.onnx", required: true, what: "VAE decoder" },
  { path: "vae_encoder/model.onnx", required: false, what: "VAE encoder" },
];

/** A graph input or output: name, ORT element type name (`float32`, `int64`, …) and shape. */
export interface TensorSignature {
  /** Input or output name. */
  name: string;
  /** Element type as onnxruntime-web names it. */
  type: string;
  /** Fixed sizes as numbers, symbolic ones by name (`?` when unnamed). */
  shape: (number | string)[];
}

/** One ONNX model of the layout, resolved to local files. */
export interface OnnxModelFiles {
  /** Local path of the `.onnx` file. */
  model: string;
  /**
   * The `.onnx` bytes that were scanned for external data, so the session gets exactly these
   * (reading the file again would let it change in between).
   */
  bytes?: Uint8Array;
  /** Whether the paths are real paths inside a local model folder (not download-cache paths). */
  local?: boolean;
  /** External weight files: `location` as stored in the model, `path` the local file. */
  externalData: { location: string; path: string }[];
  /** Graph inputs. */
  inputs: TensorSignature[];
  /** Graph outputs. */
  outputs: TensorSignature[];
}

/** Every file of a resolved SD 1.5-class pipeline. */
export interface Sd15Files {
  /** The directory or base URL it was resolved from. */
  root: string;
  /** Local path of model_index.json. */
  modelIndex: string;
  /** Local path of scheduler/scheduler_config.json. */
  schedulerConfig: string;
  /** Tokenizer files. */
  tokenizer: ClipTokenizerFiles;
  /** text_encoder/model.onnx and its weights. */
  textEncoder: OnnxModelFiles;
  /** unet/model.onnx and its weights. */
  unet: OnnxModelFiles;
  /** vae_decoder/model.onnx and its weights. */
  vaeDecoder: OnnxModelFiles;
  /** vae_encoder/model.onnx, when the pipeline has one. */
  vaeEncoder?: OnnxModelFiles;
}

/**
 * Gives the local path of a layout file (`rel` uses `/`), or undefined when it does not exist.
 * `required` tells a remote getter whether absence is worth a request.
 */
export type FileGetter = (rel: string, required: boolean) => Promise<string | undefined>;

/**
 * A {@link FileGetter} for a model directory on disk. Every path is confined to the directory
 * by its {@link modelRoot} (links on disk included): an escaping path is an AttnkitError.
 *
 * @example
 * ```ts
 * const get = localFileGetter("tests/fixtures/hf_tiny");
 * await get("unet/model.onnx", true); // the real path of the file inside the folder
 * ```
 */
export function localFileGetter(dir: string): FileGetter {
  const root = modelRoot(dir);
  return (rel) => root.local(rel, rel);
}

const ELEM_TYPES: Record<number, string> = {
  1: "float32",
  2: "uint8",
  3: "int8",
  4: "uint16",
  5: "int16",
  6: "int32",
  7: "int64",
  8: "string",
  9: "bool",
  10: "float16",
  11: "float64",
  12: "uint32",
  13: "uint64",
  16: "bfloat16",
};

function signature(v: ValueInfoProto): TensorSignature {
  const t = v.type?.tensorType;
  return {
    name: v.name,
    type: t ? ELEM_TYPES[t.elemType] ?? `onnx-type-${t.elemType}` : "unknown",
    shape: (t?.shape?.dim ?? []).map((d) => d.dimValue ?? d.dimParam ?? "?"),
  };
}

/** Graph inputs that are real inputs (older exporters also list initializers as inputs). */
export function modelInputs(model: Model): TensorSignature[] {
  const weights = new Set(model.graph.initializer.map((t) => t.name));
  return model.graph.input.filter((v) => !weights.has(v.name)).map(signature);
}

/** Graph outputs. */
export function modelOutputs(model: Model): TensorSignature[] {
  return model.graph.output.map(signature);
}

/**
 * Distinct `location`s of external tensor data in a model: initializers and Constant/attribute
 * tensors, in subgraphs too, in first-seen order.
 */
export function externalDataLocations(model: Model): string[] {
  const seen = new Set<string>();
  const visitTensor = (t: TensorProto | undefined): void => {
    if (!t) return;
    const loc = t.externalData?.find((e) => e.key === "location")?.value;
    if (loc !== undefined && (t.dataLocation === 1 || t.dataLocation === undefined)) seen.add(loc);
  };
  const visitGraph = (g: GraphProto): void => {
    g.initializer.forEach(visitTensor);
    for (const node of g.node) {
      for (const a of node.attribute) {
        visitTensor(a.t);
        if (a.g) visitGraph(a.g);
      }
    }
  };
  visitGraph(model.graph);
  return [...seen];
}

/**
 * Rejects external-data locations that would reach outside the model's folder (the lexical half
 * of {@link confineEntry}; the getter adds the on-disk link check).
 *
 * @example
 * ```ts
 * checkLocation("model.onnx_data", "unet/model.onnx"); // ok
 * // checkLocation("../../secret", "unet/model.onnx") throws an AttnkitError naming unet/model.onnx
 * ```
 */
export function checkLocation(location: string, modelRel: string): void {
  confineEntry(location, modelRel, `the folder of ${modelRel} (an external data location)`);
}

function layoutSummary(): string {
  const req = SD15_HF_LAYOUT.filter((e) => e.required).map((e) => e.path);
  const opt = SD15_HF_LAYOUT.filter((e) => !e.required).map((e) => e.path);
  return `the Hugging Face ONNX layout for Stable Diffusion needs ${req.join(", ")} ` +
    `(optional: ${opt.join(", ")}; external weights as each model.onnx names them)`;
}

/** The AttnkitError for a missing required file: names the file, the root and the layout. */
export function missingFileError(rel: string, root: string): AttnkitError {
  return new AttnkitError(rel, `missing from ${root}; ${layoutSummary()}`);
}

async function readJsonObject(path: string, rel: string): Promise<Record<string, unknown>> {
  let value: unknown;
  try {
    value = JSON.parse(await readTextChecked(path, rel));
  } catch (e) {
    throw new AttnkitError(rel, `is not valid JSON (${path}): ${(e as Error).message}`);
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) {
    throw new AttnkitError(rel, `must hold a JSON object (${path})`);
  }
  return value as Record<string, unknown>;
}

/**
 * Checks model_index.json's components: each array value is `[library, class]` (either may be
 * null) and, when declared, names a folder inside the root (component keys are folder names;
 * loaders for SD3/Flux/DiT read `<key>/…`). Errors name the key and the root.
 *
 * @example
 * ```ts
 * checkComponents({ unet: ["diffusers", "OnnxRuntimeModel"] }, "/models/sd"); // ok
 * ```
 */
export function checkComponents(index: Record<string, unknown>, root: string): void {
  for (const [key, v] of Object.entries(index)) {
    // Arrays are components; other values are pipeline options (requires_safety_checker: true).
    if (key.startsWith("_") || !Array.isArray(v)) continue;
    const pair = v.length === 2 &&
      v.every((x) => x === null || typeof x === "string");
    if (!pair) {
      throw new AttnkitError(
        `model_index.json ${key}`,
        `must be [library, class] (strings, or null for an absent component), got ${
          JSON.stringify(v)
        }`,
      );
    }
    if (declaresComponent(index, key)) confineEntry(key, `model_index.json ${key}`, root);
  }
}

/**
 * Whether model_index.json declares a component: true for `[library, class]`, false for
 * `[null, null]`, undefined when the key is absent (then only a lookup can tell).
 */
export function declaresComponent(
  modelIndex: Record<string, unknown>,
  key: string,
): boolean | undefined {
  const v = modelIndex[key];
  if (v === undefined) return undefined;
  return Array.isArray(v) && v.some((x) => x !== null);
}

/** Reads one ONNX file's IO and external-data locations, fetching the weight files it names. */
export async function resolveOnnxModel(
  rel: string,
  get: FileGetter,
  root: string,
): Promise<OnnxModelFiles> {
  const model = await get(rel, true);
  if (model === undefined) throw missingFileError(rel, root);
  const local = !/^https?:\/\//i.test(root);
  const bytes = await readFileChecked(model, rel, MAX_ONNX_BYTES, local ? "real" : undefined);
  const decoded = decodeModel(bytes, rel);
  const dir = rel.includes("/") ? rel.slice(0, rel.lastIndexOf("/") + 1) : "";
  const externalData: { location: string; path: string }[] = [];
  // The wire-level scan also sees functions, sparse initializers and training info.
  for (const location of externalDataRefs(bytes, rel)) {
    checkLocation(location, rel);
    const dataRel = dir + location.replace(/\\/g, "/");
    const path = await get(dataRel, true);
    if (path === undefined) {
      throw new AttnkitError(
        dataRel,
        `missing from ${root}: ${rel} keeps its weights there (external data location ` +
          `${JSON.stringify(location)}); ${layoutSummary()}`,
      );
    }
    externalData.push({ location, path });
  }
  return {
    model,
    bytes,
    local,
    externalData,
    inputs: modelInputs(decoded),
    outputs: modelOutputs(decoded),
  };
}

/**
 * Resolves the SD 1.5-class layout through `get` (model_index.json first, then configs,
 * tokenizer, and the UNet before the other models). Missing required files give an
 * AttnkitError naming the file and the layout; SDXL pipelines are refused.
 */
export async function resolveSd15Layout(root: string, get: FileGetter): Promise<Sd15Files> {
  const need = async (rel: string): Promise<string> => {
    const path = await get(rel, true);
    if (path === undefined) throw missingFileError(rel, root);
    return path;
  };
  const modelIndex = await need("model_index.json");
  const index = await readJsonObject(modelIndex, "model_index.json");
  const className = String(index["_class_name"] ?? "");
  checkComponents(index, root);
  // `[null, null]` declares a component absent (diffusers' convention), so only a declared
  // second text encoder makes this a multi-encoder pipeline (issue 10, H7).
  if (
    /XL|StableDiffusion3|Flux/i.test(className) ||
    declaresComponent(index, "text_encoder_2") === true
  ) {
    throw new AttnkitError(
      "model_index.json",
      `${root} is a ${
        declaresComponent(index, "text_encoder_2") === true
          ? `multi-text-encoder pipeline (it declares text_encoder_2); ${className}`
          : className
      } pipeline; loadSd15 reads ` +
        `Stable Diffusion 1.x/2.x-class pipelines (one CLIP text encoder)`,
    );
  }
  // A pipeline cannot run without these; `[null, null]` says it has none.
  for (const key of ["unet", "text_encoder", "vae_decoder", "tokenizer", "scheduler"]) {
    if (declaresComponent(index, key) === false) {
      throw new AttnkitError(
        `model_index.json ${key}`,
        `declares the ${key} absent ([null, null]) in ${root}, but an SD 1.5-class pipeline ` +
          "needs it",
      );
    }
  }
  const schedulerConfig = await need("scheduler/scheduler_config.json");
  const tokenizer: ClipTokenizerFiles = {
    vocab: await need("tokenizer/vocab.json"),
    merges: await need("tokenizer/merges.txt"),
  };
  const tokConfig = await get("tokenizer/tokenizer_config.json", false);
  if (tokConfig) tokenizer.tokenizerConfig = tokConfig;
  const specialMap = await get("tokenizer/special_tokens_map.json", false);
  if (specialMap) tokenizer.specialTokensMap = specialMap;
  const unet = await resolveOnnxModel("unet/model.onnx", get, root);
  const textEncoder = await resolveOnnxModel("text_encoder/model.onnx", get, root);
  const vaeDecoder = await resolveOnnxModel("vae_decoder/model.onnx", get, root);
  const files: Sd15Files = {
    root,
    modelIndex,
    schedulerConfig,
    tokenizer,
    textEncoder,
    unet,
    vaeDecoder,
  };
  // A declared encoder must be there; an undeclared one is looked for only when the index is
  // silent, so a remote load does not spend a request on a file the index says is absent.
  const declared = declaresComponent(index, "vae_encoder");
  if (declared === true) {
    files.vaeEncoder = await resolveOnnxModel("vae_encoder/model.onnx", get, root);
  } else if (declared === undefined && await get("vae_encoder/model.onnx", false)) {
    files.vaeEncoder = await resolveOnnxModel("vae_encoder/model.onnx", get, root);
  }
  return files;
}
