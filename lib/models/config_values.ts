/**
 * Typed, range-checked reads of values from a model's JSON config files. A value of the wrong
 * type (`"16"` for 16), a missing key, or a number outside the range a loader can honour
 * (`num_train_timesteps: 1e10`) gives an {@link AttnkitError} naming the file and the key path,
 * at load, instead of a TypeError or an allocation failure later.
 *
 * @example
 * ```ts
 * import { configReader } from "./config_values.ts";
 * const c = configReader({ latent_size: 16 }, "config.json");
 * c.int("latent_size", 1, 1024); // 16
 * ```
 *
 * @module
 */
import { AttnkitError } from "../errors.ts";

/** Largest training horizon accepted (diffusers' schedulers use 1000; 4000 is seen). */
export const MAX_TRAIN_STEPS = 100_000;
/** Largest token length accepted for a text encoder's input. */
export const MAX_TOKENS = 4096;

/** Reads keys of one JSON object; `path` prefixes key names in messages (`schedule.`). */
export interface ConfigReader {
  /** The file the values came from (the error's argument). */
  readonly file: string;
  /** Whether the key is present (not undefined). */
  has(key: string): boolean;
  /** An integer in [min, max]; `fallback` when the key is absent (required when omitted). */
  int(key: string, min: number, max: number, fallback?: number): number;
  /** A finite number in [min, max] (`open` excludes the ends). */
  num(key: string, min: number, max: number, fallback?: number, open?: boolean): number;
  /** A non-empty string. */
  str(key: string, fallback?: string): string;
  /** One of `choices`. */
  oneOf<T extends string>(key: string, choices: readonly T[], fallback?: T): T;
  /** A nested object as a reader of its own. */
  obj(key: string): ConfigReader;
  /** The raw value (unchecked). */
  raw(key: string): unknown;
}

function show(v: unknown): string {
  return v === undefined ? "nothing (the key is missing)" : JSON.stringify(v) ?? String(v);
}

/**
 * A {@link ConfigReader} over `value` (which must be a JSON object). Errors read
 * `config.json: schedule.train_steps must be an integer in [1, 100000], got 10000000000`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { configReader } from "./config_values.ts";
 * const text = '{ "schedule": { "train_steps": 1000 } }';
 * const s = configReader(JSON.parse(text), "config.json").obj("schedule");
 * const T = s.int("train_steps", 1, 100_000);
 * assert(T === 1000);
 * let message = "";
 * try {
 *   configReader({ schedule: { train_steps: 1e10 } }, "config.json").obj("schedule")
 *     .int("train_steps", 1, 100_000);
 * } catch (e) {
 *   message = String(e); // config.json: schedule.train_steps must be an integer in [1, 100000], …
 * }
 * assert(message.includes("schedule.train_steps"));
 * ```
 */
export function configReader(value: unknown, file: string, path = ""): ConfigReader {
  if (!value || typeof value !== "object" || Array.isArray(value)) {
    throw new AttnkitError(
      file,
      `${path ? path.slice(0, -1) : "the file"} must be a JSON object, got ${show(value)}`,
    );
  }
  const o = value as Record<string, unknown>;
  const fail = (key: string, want: string, v: unknown): never => {
    throw new AttnkitError(file, `${path}${key} must be ${want}, got ${show(v)}`);
  };
  const get = (key: string, fallback: unknown): unknown => o[key] ?? fallback;
  const range = (min: number, max: number, open = false): string =>
    open ? `in (${min}, ${max})` : `in [${min}, ${max}]`;
  return {
    file,
    has: (key) => o[key] !== undefined && o[key] !== null,
    int(key, min, max, fallback) {
      const v = get(key, fallback);
      if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
        fail(key, `an integer ${range(min, max)}`, v);
      }
      return v as number;
    },
    num(key, min, max, fallback, open = false) {
      const v = get(key, fallback);
      const ok = typeof v === "number" && Number.isFinite(v) &&
        (open ? v > min && v < max : v >= min && v <= max);
      if (!ok) fail(key, `a finite number ${range(min, max, open)}`, v);
      return v as number;
    },
    str(key, fallback) {
      const v = get(key, fallback);
      if (typeof v !== "string" || v === "") fail(key, "a non-empty string", v);
      return v as string;
    },
    oneOf(key, choices, fallback) {
      const v = get(key, fallback);
      if (!choices.includes(v as never)) fail(key, `one of ${choices.join(", ")}`, v);
      return v as (typeof choices)[number];
    },
    obj(key) {
      const v = o[key];
      if (!v || typeof v !== "object" || Array.isArray(v)) fail(key, "an object", v);
      return configReader(v, file, `${path}${key}.`);
    },
    raw: (key) => o[key],
  };
}

/**
 * Smallest ᾱ (alpha-bar, the signal fraction) a schedule may reach at its last training step.
 * Samplers divide by √ᾱ to recover x0; below this the division turns float32 noise into
 * infinities (SD 1.5 reaches 0.0047).
 */
export const MIN_FINAL_ALPHA_BAR = 1e-8;

/**
 * Checks that a `linear` / `scaled_linear` beta schedule keeps some signal at its last step
 * (ᾱ_T = ∏(1 − β_t) ≥ {@link MIN_FINAL_ALPHA_BAR}), naming both keys otherwise: betas such as
 * `beta_start = beta_end = 0.9999999` are each in (0, 1) yet leave ᾱ = 0 after a few steps.
 * Betas as in diffusers' DDPMScheduler (scaled_linear interpolates √β).
 *
 * @example
 * ```ts
 * checkFinalAlphaBar("scaled_linear", 0.00085, 0.012, 1000, "scheduler_config.json", ""); // passes
 * ```
 */
export function checkFinalAlphaBar(
  kind: string,
  betaStart: number,
  betaEnd: number,
  steps: number,
  file: string,
  prefix: string,
): void {
  let logAlphaBar = 0;
  for (let t = 0; t < steps; t++) {
    const f = steps === 1 ? 0 : t / (steps - 1);
    const beta = kind === "scaled_linear"
      ? (Math.sqrt(betaStart) + f * (Math.sqrt(betaEnd) - Math.sqrt(betaStart))) ** 2
      : betaStart + f * (betaEnd - betaStart);
    logAlphaBar += Math.log1p(-beta);
  }
  const alphaBar = Math.exp(logAlphaBar);
  if (!(alphaBar >= MIN_FINAL_ALPHA_BAR)) {
    throw new AttnkitError(
      file,
      `${prefix}beta_start (${betaStart}) and ${prefix}beta_end (${betaEnd}) over ${steps} steps ` +
        `leave alpha-bar ${alphaBar.toPrecision(3)} at the last step, below ` +
        `${MIN_FINAL_ALPHA_BAR}: no signal is left to denoise (SD 1.5 keeps 0.0047)`,
    );
  }
}
