/**
 * Command-line flag parsing shared by the examples and benchmarks: numbers from `parseArgs`
 * strings, with an {@link AttnkitError} naming the flag when a value does not fit.
 *
 * @module
 */
import { AttnkitError } from "./errors.ts";
import { type ExecutionProvider, pickExecutionProvider } from "./onnx/ort.ts";

/** An integer flag ≥ `min` (`dflt` when absent). */
export function intArg(name: string, v: string | undefined, dflt: number, min = 0): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    throw new AttnkitError(`--${name}`, `must be an integer ≥ ${min}, got "${v}"`);
  }
  return n;
}

/** Runs a command-line `main`: an {@link AttnkitError} prints `error: …` and exits with 2. */
export async function runCli(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (e) {
    if (e instanceof AttnkitError) {
      console.error(`error: ${e.message}`);
      Deno.exit(2);
    }
    throw e;
  }
}

/** The `--ep` flag: auto (the best provider here), node, wasm or webgpu. */
export async function epArg(v: string | undefined): Promise<ExecutionProvider> {
  const ep = v ?? "auto";
  if (!["auto", "node", "wasm", "webgpu"].includes(ep)) {
    throw new AttnkitError("--ep", `must be auto, node, wasm or webgpu, got "${ep}"`);
  }
  return ep === "auto" ? await pickExecutionProvider() : ep as ExecutionProvider;
}

/**
 * Makes the output's folder and fails early on a path that cannot be written, leaving no empty
 * file behind (checked before any long work starts).
 */
export async function prepareOutput(path: string, flag = "--out"): Promise<void> {
  const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : ".";
  await Deno.mkdir(dir, { recursive: true }).catch((e) => {
    throw new AttnkitError(flag, `cannot create ${dir}: ${e.message}`);
  });
  const existed = await Deno.stat(path).then(() => true, () => false);
  try {
    (await Deno.open(path, { write: true, create: true })).close();
  } catch (e) {
    throw new AttnkitError(flag, `cannot write ${path}: ${(e as Error).message}`);
  }
  if (!existed) await Deno.remove(path);
}
