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
import { externalDataEntries } from "./external.ts";
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
  /**
   * External weight files: `path` must equal the `location` stored in the model. Every location
   * the model names must be supplied here (read through a `ModelRoot`, `lib/models/root.ts`):
   * onnxruntime is never left to open files itself.
   */
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
    // Errors only: the runtime's warnings (e.g. unused initializers of emitted VJP graphs) are
    // not the caller's business, and a library never writes to stderr unasked.
    logSeverityLevel: 3,
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

/**
 * onnxruntime's message for an error, or a stand-in when it gave none (its wasm build sometimes
 * reports `ERROR_MESSAGE: ` and nothing more).
 *
 * @example
 * ```ts
 * ortMessage(new Error("")); // "(onnxruntime gave no message)"
 * ```
 */
export function ortMessage(e: unknown): string {
  const m = (e instanceof Error ? e.message : String(e)).trim();
  return m === "" || /ERROR_MESSAGE:\s*$/.test(m)
    ? `${m ? m + " " : ""}(onnxruntime gave no message)`
    : m;
}

/**
 * The session with `run` failures turned into AttnkitErrors naming the file and the step, so an
 * input onnxruntime rejects (a wrong length, a dtype) is reported against the model it came from.
 */
function namedRuns(session: Session, source: string, provider: string): Session {
  const run = session.run.bind(session) as (...a: unknown[]) => Promise<unknown>;
  const wrapped = async (...args: unknown[]): Promise<unknown> => {
    try {
      return await run(...args);
    } catch (e) {
      if (e instanceof AttnkitError) throw e;
      throw new AttnkitError(
        source,
        `onnxruntime (${provider}) failed to run it: ${ortMessage(e)}`,
      );
    }
  };
  return new Proxy(session, {
    get(target, prop) {
      if (prop === "run") return wrapped;
      const v = Reflect.get(target, prop, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

const PROVIDERS: readonly ExecutionProvider[] = ["wasm", "webgpu", "node"];

/**
 * Checks the options a caller may pass untyped (from JavaScript or JSON): providers a non-empty
 * array of known names, external data an array of `{path: string, data: Uint8Array}` (a string
 * `data` would let onnxruntime-web fetch a URL by itself).
 */
function checkOptions(opts: CreateSessionOptions): void {
  if (opts === null || typeof opts !== "object") {
    throw new AttnkitError("opts", `expected an options object, got ${JSON.stringify(opts)}`);
  }
  const eps = opts.executionProviders;
  if (eps !== undefined) {
    if (
      !Array.isArray(eps) || eps.length === 0 ||
      !eps.every((e) => (PROVIDERS as readonly unknown[]).includes(e))
    ) {
      throw new AttnkitError(
        "executionProviders",
        `expected a non-empty array of ${PROVIDERS.map((p) => `"${p}"`).join(", ")}, got ${
          JSON.stringify(eps)
        }`,
      );
    }
  }
  const threads = opts.threads;
  if (threads !== undefined && !(Number.isInteger(threads) && threads >= 1 && threads <= 256)) {
    throw new AttnkitError("threads", `expected an integer in [1, 256], got ${threads}`);
  }
  const ext = opts.externalData;
  if (ext !== undefined) {
    if (!Array.isArray(ext)) {
      throw new AttnkitError("externalData", `expected an array, got ${JSON.stringify(ext)}`);
    }
    ext.forEach((e, i) => {
      if (!e || typeof e.path !== "string" || !(e.data instanceof Uint8Array)) {
        throw new AttnkitError(
          `externalData[${i}]`,
          "expected {path: string, data: Uint8Array}; the bytes must be supplied, never a path " +
            "or URL for onnxruntime to open",
        );
      }
    });
  }
}

/**
 * Refuses model bytes that name external data not supplied in `externalData`: onnxruntime-node
 * would resolve such a location against the working directory (issue 10, F1), and
 * onnxruntime-web would fail without saying why.
 */
function checkExternalData(bytes: Uint8Array, opts: CreateSessionOptions): void {
  const source = opts.source ?? "model";
  if (!(bytes instanceof Uint8Array)) {
    throw new AttnkitError(source, "expected the model's bytes as a Uint8Array");
  }
  const supplied = new Map((opts.externalData ?? []).map((e) => [e.path, e.data]));
  for (const { tensor, location, offset, length } of externalDataEntries(bytes, source)) {
    const data = supplied.get(location);
    if (data !== undefined) {
      // onnxruntime's own message for a bad range names neither tensor nor file (or crashes).
      const bad = (why: string): never => {
        throw new AttnkitError(
          source,
          `tensor ${JSON.stringify(tensor)}: external data ${JSON.stringify(location)} ${why}`,
        );
      };
      const int = (key: string, v: string | undefined): number => {
        if (v === undefined) return key === "offset" ? 0 : data.length - int("offset", offset);
        if (!/^[0-9]{1,16}$/.test(v) || !Number.isSafeInteger(Number(v))) {
          bad(`has ${key} ${JSON.stringify(v)}, not a byte count`);
        }
        return Number(v);
      };
      const from = int("offset", offset);
      const n = int("length", length);
      if (from > data.length || from + n > data.length) {
        bad(`has offset ${from} and length ${n}, past the end of its ${data.length} bytes`);
      }
      continue;
    }
    throw new AttnkitError(
      source,
      `names external data ${JSON.stringify(location)} that was not supplied in externalData; ` +
        "attnkit never lets onnxruntime open files itself (load model files through a " +
        "ModelRoot: readOnnx in lib/models/root.ts)",
    );
  }
}

/**
 * Creates an inference session from model bytes; ORT failures (at creation and at every later
 * `run`) become AttnkitErrors naming `opts.source` and the step. Every external-data location
 * the model names must be in `opts.externalData`, whatever the execution provider.
 *
 * @example
 * ```ts
 * const s = await createSession(await Deno.readFile("weights/shapes/vae_decoder.onnx"), {
 *   source: "vae_decoder.onnx",
 * });
 * ```
 */
export async function createSession(
  bytes: Uint8Array,
  opts: CreateSessionOptions = {},
): Promise<Session> {
  checkOptions(opts);
  const eps = opts.executionProviders ?? ["wasm"];
  const source = opts.source ?? "model";
  checkExternalData(bytes, opts);
  if (eps.includes("node")) {
    if (eps.length > 1) {
      throw new AttnkitError(
        "executionProviders",
        `"node" cannot be combined with others, got ${eps}`,
      );
    }
    try {
      return namedRuns(await nodeSession(bytes, opts), source, "node");
    } catch (e) {
      if (e instanceof AttnkitError) throw e;
      throw new AttnkitError(
        source,
        `onnxruntime-node could not create a session for it: ${ortMessage(e)}`,
      );
    }
  }
  if (sessionsCreated === 0) ort.env.wasm.numThreads = opts.threads ?? 1;
  sessionsCreated++;
  const options: ortModule.InferenceSession.SessionOptions = {
    executionProviders: eps as ("wasm" | "webgpu")[],
    graphOptimizationLevel: opts.graphOptimizationLevel ?? "all",
    logSeverityLevel: 3,
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
    if (!eps.includes("webgpu")) return namedRuns(await create(), source, eps.join("+"));
    // onnxruntime-web refuses a WebGPU session while another is being created ("another WebGPU
    // EP inference session is being created"), so WebGPU sessions are made one at a time.
    const made = webgpuCreation.then(create, create);
    webgpuCreation = made.catch(() => undefined);
    return namedRuns(await made, source, eps.join("+"));
  } catch (e) {
    throw new AttnkitError(
      source,
      `onnxruntime-web could not create a session for it: ${ortMessage(e)}`,
    );
  }
}

/**
 * Makes sessions one after another (onnxruntime-web mounts external data in one global table, so
 * concurrent creations race); a failure releases the ones already made, so a load that fails
 * half-way leaves nothing open.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createSession, encodeModel } from "@attnkit/attnkit";
 * import { allOrRelease } from "./ort.ts";
 * import { model, node, valueInfo } from "./build.ts";
 * const identity = (op: string) =>
 *   encodeModel(model({
 *     inputs: [valueInfo("x", [2])],
 *     outputs: [valueInfo("y", [2])],
 *     nodes: [node(op, ["x"], ["y"])],
 *   }));
 * const [a, b] = await allOrRelease([
 *   () => createSession(identity("Identity")),
 *   () => createSession(identity("Relu")),
 * ]);
 * assert(a.inputNames[0] === "x" && b.outputNames[0] === "y");
 * await a.release();
 * await b.release();
 * ```
 */
export async function allOrRelease<T extends readonly { release(): Promise<void> }[]>(
  makers: { [K in keyof T]: () => Promise<T[K]> },
): Promise<T> {
  const made: { release(): Promise<void> }[] = [];
  try {
    for (const make of makers as readonly (() => Promise<{ release(): Promise<void> }>)[]) {
      made.push(await make());
    }
  } catch (e) {
    for (const s of made) await s.release().catch(() => {});
    throw e;
  }
  return made as unknown as T;
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
