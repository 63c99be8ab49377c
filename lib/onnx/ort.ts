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
import * as ortModule from "npm:onnxruntime-web@1.30.0/webgpu";
import { AttnkitError } from "../errors.ts";
import { getBackend, useDevice } from "../../kernels/backend.ts";

/** The onnxruntime-web namespace (Tensor, InferenceSession, env, …). */
export const ort: typeof ortModule = ortModule;

/** An ORT tensor. */
export type OrtTensor = ortModule.Tensor;

/** An ORT inference session. */
export type Session = ortModule.InferenceSession;

/**
 * Where a session runs: onnxruntime-web's `wasm` or `webgpu` execution provider, or `node`:
 * onnxruntime-node's native CPU provider (loaded on first use; about 15× faster than wasm on the
 * embedded UNet here, see bench/results/runtime.md, at the price of a ~290 MB npm download).
 */
export type ExecutionProvider = "wasm" | "webgpu" | "node";

/** Options for {@link createSession}. */
export interface CreateSessionOptions {
  /** Execution providers in order of preference (default `["wasm"]`); `node` must stand alone. */
  executionProviders?: ExecutionProvider[];
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
let webgpuCreation: Promise<unknown> = Promise.resolve();
let deviceShared = false;

/**
 * After onnxruntime's first WebGPU session, makes attnkit's kernels use the GPUDevice that ORT
 * made (ORT 1.30's WebGPU provider creates its own device and ignores one set beforehand), so
 * model outputs and kernels live on one device.
 */
async function shareDevice(): Promise<void> {
  if (deviceShared) return;
  useDevice((await ort.env.webgpu.device) as GPUDevice);
  deviceShared = true;
}
let nodeOrt: Promise<typeof ortModule> | undefined;

function loadNodeOrt(): Promise<typeof ortModule> {
  nodeOrt ??= import("npm:onnxruntime-node@1.30.0").then((m) => m as unknown as typeof ortModule)
    .catch(
      (e) => {
        nodeOrt = undefined;
        throw new AttnkitError(
          "executionProviders",
          `"node" needs the npm package onnxruntime-node, which could not be loaded: ${
            e instanceof Error ? e.message : String(e)
          }`,
        );
      },
    );
  return nodeOrt;
}

/**
 * A native onnxruntime-node session behind the web session's interface: feeds made with this
 * module's `ort.Tensor` are re-wrapped (no copy) into the native module's Tensor class.
 */
async function nodeSession(bytes: Uint8Array, opts: CreateSessionOptions): Promise<Session> {
  const native = await loadNodeOrt();
  const options: Record<string, unknown> = {
    executionProviders: ["cpu"],
    graphOptimizationLevel: opts.graphOptimizationLevel ?? "all",
    // One thread by default: ORT's pool spins, and on a small shared machine spinning threads
    // slow every other process down.
    intraOpNumThreads: opts.threads ?? 1,
    interOpNumThreads: 1,
  };
  if (opts.externalData) options.externalData = opts.externalData;
  if (opts.freeDimensionOverrides) options.freeDimensionOverrides = opts.freeDimensionOverrides;
  const s = await native.InferenceSession.create(bytes, options);
  const wrap = (feeds: Record<string, ortModule.Tensor>): Record<string, ortModule.Tensor> => {
    const out: Record<string, ortModule.Tensor> = {};
    for (const [k, t] of Object.entries(feeds)) {
      out[k] = new native.Tensor(t.type as "float32", t.data as Float32Array, t.dims as number[]);
    }
    return out;
  };
  const adapted = {
    inputNames: s.inputNames,
    outputNames: s.outputNames,
    run: (feeds: Record<string, ortModule.Tensor>, ...rest: unknown[]) =>
      (s.run as (...a: unknown[]) => Promise<unknown>)(wrap(feeds), ...rest),
    release: () => s.release(),
  };
  return adapted as unknown as Session;
}

/** Creates an inference session from model bytes; ORT failures become AttnkitErrors. */
export async function createSession(
  bytes: Uint8Array,
  opts: CreateSessionOptions = {},
): Promise<Session> {
  const eps = opts.executionProviders ?? ["wasm"];
  if (eps.includes("node")) {
    if (eps.length > 1) {
      throw new AttnkitError(
        "executionProviders",
        `"node" cannot be combined with others, got ${eps}`,
      );
    }
    try {
      return await nodeSession(bytes, opts);
    } catch (e) {
      if (e instanceof AttnkitError) throw e;
      throw new AttnkitError(
        opts.source ?? "model",
        `onnxruntime-node could not load it: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
  }
  if (sessionsCreated === 0) ort.env.wasm.numThreads = opts.threads ?? 1;
  sessionsCreated++;
  const options: ortModule.InferenceSession.SessionOptions = {
    executionProviders: eps as ("wasm" | "webgpu")[],
    graphOptimizationLevel: opts.graphOptimizationLevel ?? "all",
  };
  if (opts.externalData) options.externalData = opts.externalData;
  if (opts.freeDimensionOverrides) options.freeDimensionOverrides = opts.freeDimensionOverrides;
  if (opts.preferredOutputLocation) options.preferredOutputLocation = opts.preferredOutputLocation;
  try {
    const create = async () => {
      const session = await ort.InferenceSession.create(bytes, options);
      if (eps.includes("webgpu")) await shareDevice();
      return session;
    };
    if (!eps.includes("webgpu")) return await create();
    // onnxruntime-web refuses a WebGPU session while another is being created ("another WebGPU
    // EP inference session is being created"), so WebGPU sessions are made one at a time.
    const made = webgpuCreation.then(create, create);
    webgpuCreation = made.catch(() => undefined);
    return await made;
  } catch (e) {
    throw new AttnkitError(
      opts.source ?? "model",
      `onnxruntime-web could not load it: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
}

/** The fastest CPU provider that loads here: `node` when onnxruntime-node imports, else `wasm`. */
export async function fastestCpuProvider(): Promise<ExecutionProvider> {
  try {
    await loadNodeOrt();
    return "node";
  } catch {
    return "wasm";
  }
}

/**
 * The provider for `"auto"`: WebGPU when attnkit's backend found a real (non-fallback) GPU
 * adapter, else the fastest CPU provider ({@link fastestCpuProvider}).
 */
export async function pickExecutionProvider(): Promise<ExecutionProvider> {
  return (await getBackend()) === "gpu" ? "webgpu" : fastestCpuProvider();
}
