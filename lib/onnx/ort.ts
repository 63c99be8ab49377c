/**
 * The one way attnkit imports onnxruntime-web, so every module shares one ORT instance (its
 * `env` settings — wasm threads, the WebGPU device — are per module instance).
 *
 * Why `onnxruntime-web/webgpu`: in Deno the bare `onnxruntime-web` import resolves through the
 * package's `"node"` export condition to `ort.node.min.mjs`, which runs the wasm EP but has no
 * WebGPU backend. The `/webgpu` entry runs both the `wasm` and the `webgpu` EPs in Deno 2.9.
 *
 * @module
 */
import * as ortModule from "onnxruntime-web/webgpu";
import { AttnkitError } from "../errors.ts";

/** The onnxruntime-web namespace (Tensor, InferenceSession, env, …). */
export const ort: typeof ortModule = ortModule;

/** An ORT tensor. */
export type OrtTensor = ortModule.Tensor;

/** An ORT inference session. */
export type Session = ortModule.InferenceSession;

/** Options for {@link createSession}. */
export interface CreateSessionOptions {
  /** Execution providers in order of preference (default `["wasm"]`). */
  executionProviders?: ("wasm" | "webgpu")[];
  /**
   * wasm threads; applied only before the first session of the process (ORT reads it once).
   * Default 1: the machines this runs on are shared and small graphs gain nothing from threads.
   */
  threads?: number;
  /** External weight files: `path` must equal the `location` stored in the model. */
  externalData?: { path: string; data: Uint8Array }[];
  /** Pins symbolic dimensions, e.g. `{ batch: 1 }`. */
  freeDimensionOverrides?: Record<string, number>;
  /** ORT graph optimisation level (default "all"). */
  graphOptimizationLevel?: "disabled" | "basic" | "extended" | "all";
  /** Where outputs live (WebGPU only); default CPU. */
  preferredOutputLocation?: "cpu" | "gpu-buffer";
  /** Label for error messages (a file name). */
  source?: string;
}

let sessionsCreated = 0;

/** Creates an inference session from model bytes; ORT failures become AttnkitErrors. */
export async function createSession(
  bytes: Uint8Array,
  opts: CreateSessionOptions = {},
): Promise<Session> {
  if (sessionsCreated === 0) ort.env.wasm.numThreads = opts.threads ?? 1;
  sessionsCreated++;
  const options: ortModule.InferenceSession.SessionOptions = {
    executionProviders: opts.executionProviders ?? ["wasm"],
    graphOptimizationLevel: opts.graphOptimizationLevel ?? "all",
  };
  if (opts.externalData) options.externalData = opts.externalData;
  if (opts.freeDimensionOverrides) options.freeDimensionOverrides = opts.freeDimensionOverrides;
  if (opts.preferredOutputLocation) options.preferredOutputLocation = opts.preferredOutputLocation;
  try {
    return await ort.InferenceSession.create(bytes, options);
  } catch (e) {
    throw new AttnkitError(
      opts.source ?? "model",
      `onnxruntime-web could not load it: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
}
