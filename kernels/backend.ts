/**
 * Chooses, once per process, where attnkit's heavy attention maths runs: WGSL kernels on a
 * WebGPU device ("gpu") or the plain TypeScript references ("cpu").
 *
 * The automatic choice takes the GPU only for a real adapter. Mesa's software adapter
 * (llvmpipe, `isFallbackAdapter`) is correct but roughly a hundred times slower than the
 * TypeScript loops, so it counts as "cpu" unless the GPU is forced, which is how the parity
 * tests exercise the kernels on a machine without a GPU.
 *
 * Precedence: an explicit `prefer` option, then the `ATTNKIT_BACKEND` environment variable
 * (`gpu`, `cpu` or `auto`), then the automatic choice.
 *
 * @module
 */
import { AttnkitError } from "../lib/errors.ts";

/** Where kernels run. */
export type Backend = "gpu" | "cpu";

/** A backend, or "auto" to let the adapter decide. */
export type BackendPreference = Backend | "auto";

/** Options for {@link getBackend}. */
export interface BackendOptions {
  /** "gpu", "cpu" or "auto" (default: `ATTNKIT_BACKEND`, else "auto"). */
  readonly prefer?: BackendPreference;
}

/** What the adapter probe found. */
export interface AdapterReport {
  /** Whether any WebGPU adapter was returned. */
  readonly available: boolean;
  /** Whether that adapter is a software (fallback) one. */
  readonly fallback: boolean;
  /** The adapter's description ("llvmpipe (LLVM 15.0.6, 256 bits)", a GPU name, …). */
  readonly description: string;
}

interface Probe {
  readonly adapter: GPUAdapter | null;
  readonly report: AdapterReport;
}

let probe: Promise<Probe> | undefined;
let device: Promise<GPUDevice> | undefined;
let userDevice: GPUDevice | undefined;

/**
 * Reads a backend name ("gpu", "cpu", "auto", any case); `source` names where it came from.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { AttnkitError, maps } from "@attnkit/attnkit";
 * assert.equal(maps.parsePreference(" GPU ", "ATTNKIT_BACKEND"), "gpu");
 * assert.throws(() => maps.parsePreference("tpu", "ATTNKIT_BACKEND"), AttnkitError);
 * ```
 */
export function parsePreference(value: string, source: string): BackendPreference {
  const v = value.trim().toLowerCase();
  if (v === "gpu" || v === "cpu" || v === "auto") return v;
  throw new AttnkitError("backend", `${source} must be "gpu", "cpu" or "auto", got "${value}"`);
}

function envPreference(): BackendPreference | undefined {
  let raw: string | undefined;
  try {
    raw = Deno.env.get("ATTNKIT_BACKEND");
  } catch {
    // Without --allow-env the variable is simply not consulted.
    return undefined;
  }
  return raw === undefined || raw === "" ? undefined : parsePreference(raw, "ATTNKIT_BACKEND");
}

function isFallback(adapter: GPUAdapter): boolean {
  // Deno 2.9 reports the flag on `adapter.info`; older builds and the spec draft on the adapter.
  const onInfo = (adapter.info as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter;
  const onAdapter = (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter;
  return onInfo === true || onAdapter === true;
}

/**
 * Mesa's drivers print "XDG_RUNTIME_DIR is invalid or not set" to stderr when an adapter is
 * requested without that variable (as in CI and containers); the library never writes to stderr
 * unasked, so when it is unset (and env access is granted) it points at a private temporary
 * folder made for this process before the probe.
 */
function quietDriverProbe(): void {
  try {
    if (Deno.build.os !== "linux" || Deno.env.get("XDG_RUNTIME_DIR")) return;
    Deno.env.set("XDG_RUNTIME_DIR", Deno.makeTempDirSync({ prefix: "attnkit-xdg-" }));
  } catch {
    // Without --allow-env or a writable temp dir, the driver's message is all that is lost.
  }
}

function probeAdapter(): Promise<Probe> {
  probe ??= (async (): Promise<Probe> => {
    const gpu = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
    if (gpu) quietDriverProbe();
    const adapter = gpu ? await gpu.requestAdapter({ powerPreference: "high-performance" }) : null;
    if (!adapter) {
      return { adapter: null, report: { available: false, fallback: false, description: "none" } };
    }
    const info = adapter.info;
    const description = info.description || [info.vendor, info.device].filter(Boolean).join(" ");
    return { adapter, report: { available: true, fallback: isFallback(adapter), description } };
  })();
  return probe;
}

/** Probes the WebGPU adapter once per process and says what was found. */
export async function adapterReport(): Promise<AdapterReport> {
  if (userDevice) {
    return { available: true, fallback: false, description: "device supplied by the caller" };
  }
  return (await probeAdapter()).report;
}

/**
 * Resolves the backend: "auto" picks "gpu" only for a real (non-fallback) adapter; "gpu" forced
 * on a fallback adapter is honoured; "gpu" with no adapter at all throws.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { maps } from "@attnkit/attnkit";
 * assert.equal(await maps.getBackend({ prefer: "cpu" }), "cpu"); // "auto": "gpu" on a real adapter
 * ```
 */
export async function getBackend(opts: BackendOptions = {}): Promise<Backend> {
  const preference = opts.prefer === undefined
    ? envPreference() ?? "auto"
    : parsePreference(String(opts.prefer), "prefer");
  if (preference === "cpu") return "cpu";
  if (userDevice) return "gpu";
  const { report } = await probeAdapter();
  if (preference === "gpu") {
    if (!report.available) {
      throw new AttnkitError("backend", "gpu was requested but no WebGPU adapter is available");
    }
    return "gpu";
  }
  return report.available && !report.fallback ? "gpu" : "cpu";
}

function raisedLimits(adapter: GPUAdapter): Record<string, number> {
  // Only the limits the kernels lean on: big storage bindings (the 4096² self map is 64 MiB),
  // big buffers, and the workgroup memory the tiled kernels use.
  const names = [
    "maxStorageBufferBindingSize",
    "maxBufferSize",
    "maxComputeWorkgroupStorageSize",
    "maxComputeInvocationsPerWorkgroup",
  ] as const;
  const limits: Record<string, number> = {};
  for (const name of names) limits[name] = adapter.limits[name];
  return limits;
}

/**
 * The process-wide GPUDevice (requested once, with raised limits), or the one passed to
 * {@link useDevice}. Throws an AttnkitError naming `backend` when there is no adapter.
 */
export function getDevice(): Promise<GPUDevice> {
  if (userDevice) return Promise.resolve(userDevice);
  device ??= (async (): Promise<GPUDevice> => {
    const { adapter } = await probeAdapter();
    if (!adapter) throw new AttnkitError("backend", "no WebGPU adapter is available");
    const dev = await adapter.requestDevice({ requiredLimits: raisedLimits(adapter) });
    dev.lost.then(() => {
      device = undefined;
      probe = undefined;
    });
    return dev;
  })();
  const pending = device;
  pending.catch(() => {
    if (device === pending) device = undefined;
  });
  return pending;
}

/**
 * Makes attnkit's kernels run on a caller's GPUDevice (for example one shared with
 * onnxruntime-web's WebGPU execution provider). Pass `undefined` to go back to attnkit's own.
 */
export function useDevice(dev: GPUDevice | undefined): void {
  userDevice = dev;
}

/** Forgets the probed adapter and attnkit's own device (destroying it); for tests and tools. */
export async function resetBackend(): Promise<void> {
  const own = device;
  device = undefined;
  probe = undefined;
  if (own) {
    try {
      (await own).destroy();
    } catch {
      // A device that never came up has nothing to destroy.
    }
  }
}

/** Options every kernel dispatcher takes. */
export interface KernelOptions {
  /** Backend preference (default: `ATTNKIT_BACKEND`, else "auto"). */
  readonly backend?: BackendPreference;
  /** Run on this device (implies "gpu" unless `backend` is "cpu"). */
  readonly device?: GPUDevice;
}

/** The device a dispatcher should use, or `null` for the CPU reference path. */
export async function deviceFor(opts: KernelOptions = {}): Promise<GPUDevice | null> {
  if (opts.device && opts.backend !== "cpu") return opts.device;
  const backend = await getBackend({ prefer: opts.backend });
  return backend === "gpu" ? await getDevice() : null;
}
