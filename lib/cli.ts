/**
 * Command-line plumbing shared by the examples and benchmarks: strict number flags, the output
 * path check, and {@link runCli}, which turns every usage error into one line
 *
 *     error: --seed: must be an integer, got "" (see --help)
 *
 * on stderr with exit code 2: an {@link AttnkitError} from anywhere, and `parseArgs`' own errors
 * (unknown option, missing or ambiguous value such as `--seed -5`, unexpected argument). Flags
 * are parsed and checked before any model loads; folders that {@link prepareOutput} created are
 * removed again (when still empty) if the run fails, so a failed run leaves nothing behind.
 *
 * @module
 */
import { dirname } from "node:path";
import { AttnkitError } from "./errors.ts";
import { type ExecutionProvider, pickExecutionProvider } from "./onnx/ort.ts";

const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/**
 * An integer flag in [`min`, `max`] (`dflt` when absent). Only decimal digits with an optional
 * sign are read: "", "1e3", "0x10", "Infinity" and values beyond the safe integers are errors.
 *
 * @example
 * ```ts
 * import { intArg } from "./cli.ts";
 * intArg("steps", "20", 50, 1); // 20
 * ```
 */
export function intArg(
  name: string,
  v: string | undefined,
  dflt: number,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (v === undefined) return dflt;
  const n = Number(v.trim());
  if (!INTEGER.test(v.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    const range = min === Number.MIN_SAFE_INTEGER && max === Number.MAX_SAFE_INTEGER
      ? "(a safe integer, |n| ≤ 2^53 − 1)"
      : max === Number.MAX_SAFE_INTEGER
      ? `≥ ${min}`
      : `in ${min} … ${max}`;
    throw new AttnkitError(`--${name}`, `must be an integer ${range}, got ${JSON.stringify(v)}`);
  }
  return n;
}

/** Bounds of {@link numArg}. */
export interface NumRange {
  /** Least value (inclusive unless `minExclusive`). */
  min?: number;
  /** `min` itself is not allowed. */
  minExclusive?: boolean;
  /** Greatest value (inclusive). */
  max?: number;
}

/**
 * A finite decimal number flag within `range` (`dflt` when absent): "", "NaN", "Infinity",
 * "0x10" and the like are errors naming the flag.
 *
 * @example
 * ```ts
 * import { numArg } from "./cli.ts";
 * numArg("guidance", "7.5", 5, { min: 1 }); // 7.5
 * ```
 */
export function numArg(
  name: string,
  v: string | undefined,
  dflt: number,
  range: NumRange = {},
): number {
  if (v === undefined) return dflt;
  const n = Number(v.trim());
  const { min = -Infinity, max = Infinity, minExclusive = false } = range;
  const inRange = Number.isFinite(n) && (minExclusive ? n > min : n >= min) && n <= max;
  if (!DECIMAL.test(v.trim()) || !inRange) {
    const lo = min === -Infinity ? "" : `${minExclusive ? ">" : "≥"} ${min}`;
    const hi = max === Infinity ? "" : `≤ ${max}`;
    const bounds = [lo, hi].filter((s) => s).join(" and ");
    throw new AttnkitError(
      `--${name}`,
      `must be a finite number${bounds ? ` ${bounds}` : ""}, got ${JSON.stringify(v)}`,
    );
  }
  return n;
}

/** A `parseArgs` error (unknown option, bad or missing value) as one plain sentence. */
export function usageMessage(e: unknown, args: readonly string[] = []): string | undefined {
  const code = (e as { code?: unknown })?.code;
  if (!(e instanceof TypeError) || typeof code !== "string" || !code.startsWith("ERR_PARSE_ARGS")) {
    return undefined;
  }
  const msg = e.message;
  const unknown = /^Unknown option '([^']*)'/.exec(msg);
  if (unknown) return `unknown option ${unknown[1]}`;
  const ambiguous = /^Option '([^']*)' argument is ambiguous/.exec(msg);
  if (ambiguous) {
    const flag = ambiguous[1];
    const at = args.indexOf(flag);
    const value = at >= 0 ? args[at + 1] : undefined;
    return value === undefined
      ? `${flag}: its value starts with "-"; write ${flag}=VALUE`
      : `${flag}: the value ${JSON.stringify(value)} starts with "-"; write ${flag}=${value}`;
  }
  const missing = /^Option '(?:-\w, )?(--[^ ']+)[^']*' argument missing/.exec(msg);
  if (missing) return `${missing[1]}: needs a value`;
  const noValue = /^Option '(?:-\w, )?(--[^ ']+)[^']*' does not take an argument/.exec(msg);
  if (noValue) return `${noValue[1]}: takes no value`;
  const positional = /^Unexpected argument '([^']*)'/.exec(msg);
  if (positional) return `unexpected argument ${JSON.stringify(positional[1])}`;
  return msg.split("\n")[0];
}

/** Folders made by {@link prepareOutput} in this process, outermost first. */
const createdDirs: string[] = [];

/** Removes the folders {@link prepareOutput} made, deepest first, where they are still empty. */
export async function removeCreatedOutputDirs(): Promise<void> {
  while (createdDirs.length > 0) {
    const dir = createdDirs.pop()!;
    try {
      await Deno.remove(dir); // not recursive: only an empty folder goes
    } catch {
      // not empty (something was written there) or already gone: keep it
    }
  }
}

/**
 * Runs a command-line `main`. A usage error (an {@link AttnkitError} or a `parseArgs` error)
 * prints one `error: … (see --help)` line, removes the empty folders {@link prepareOutput} made,
 * and exits with 2. Any other error is a bug: the folders are removed and it is rethrown.
 *
 * @example
 * ```ts ignore
 * if (import.meta.main) await runCli(main);
 * ```
 */
export async function runCli(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (e) {
    await removeCreatedOutputDirs();
    const usage = e instanceof AttnkitError ? e.message : usageMessage(e, Deno.args);
    if (usage !== undefined) {
      console.error(`error: ${usage.split("\n").join(" ")} (see --help)`);
      Deno.exit(2);
    }
    throw e;
  }
}

/** The `--ep` flag: auto (the best provider here), node, wasm or webgpu. */
export async function epArg(v: string | undefined): Promise<ExecutionProvider> {
  return await resolveEp(checkEp(v));
}

/** Checks the `--ep` flag without touching any runtime (so it can run before anything loads). */
export function checkEp(v: string | undefined): "auto" | ExecutionProvider {
  const ep = v ?? "auto";
  if (!["auto", "node", "wasm", "webgpu"].includes(ep)) {
    throw new AttnkitError("--ep", `must be auto, node, wasm or webgpu, got "${ep}"`);
  }
  return ep as "auto" | ExecutionProvider;
}

async function resolveEp(ep: "auto" | ExecutionProvider): Promise<ExecutionProvider> {
  return ep === "auto" ? await pickExecutionProvider() : ep;
}

/**
 * Makes the output's folder and fails early on a path that cannot be written, leaving no empty
 * file behind (checked before any long work starts). Folders it creates are remembered, and
 * {@link runCli} removes them again if the run fails.
 */
export async function prepareOutput(path: string, flag = "--out"): Promise<void> {
  if (path.trim() === "") throw new AttnkitError(flag, 'expected a file path, got ""');
  const dir = dirname(path);
  const missing: string[] = [];
  for (let d = dir;; d = dirname(d)) {
    const found = await Deno.stat(d).then(() => true, () => false);
    if (found || dirname(d) === d) break;
    missing.unshift(d);
  }
  for (const d of missing) {
    try {
      await Deno.mkdir(d);
      createdDirs.push(d);
    } catch (e) {
      if (e instanceof Deno.errors.AlreadyExists) continue;
      await removeCreatedOutputDirs();
      throw new AttnkitError(flag, `cannot create ${d}: ${(e as Error).message}`);
    }
  }
  const existed = await Deno.stat(path).then(() => true, () => false);
  try {
    (await Deno.open(path, { write: true, create: true })).close();
  } catch (e) {
    await removeCreatedOutputDirs();
    throw new AttnkitError(flag, `cannot write ${path}: ${(e as Error).message}`);
  }
  if (!existed) await Deno.remove(path);
}
