/**
 * Reads a diffusers scheduler config (`scheduler/scheduler_config.json`) into a checked
 * {@link SchedulerSpec}: the sampler it names and every field that changes the maths, with the
 * named class's own defaults for missing keys (diffusers 0.42's `__init__` signatures: e.g.
 * DDIMScheduler defaults `clip_sample` and `set_alpha_to_one` to true, EulerDiscreteScheduler
 * defaults `timestep_spacing` to "linspace"). A `null` value means "the default".
 *
 * Supported classes: DDIMScheduler, DDPMScheduler, EulerDiscreteScheduler,
 * EulerAncestralDiscreteScheduler, FlowMatchEulerDiscreteScheduler, LCMScheduler.
 * PNDMScheduler (Stable Diffusion 1.x's config) runs as DDIM (η = 0) on PNDM's schedule, with
 * PNDM's defaults (no x̂₀ clipping, `set_alpha_to_one` false): PNDM's PLMS steps keep a history
 * of past model outputs, which attnkit's stateless {@link Sampler} cannot hold. This equals
 * `DDIMScheduler.from_config(config)` for configs that set `clip_sample: false` and
 * `set_alpha_to_one` (Stable Diffusion 1.x's do); where they are missing DDIM's own defaults
 * would clip x̂₀ to ±1 and end at ᾱ = 1, which PNDM never does. Any other class is refused with
 * an error that names it and lists
 * these. Keys the class does not take are ignored, as diffusers ignores them (listed in
 * `ignoredKeys`); a value outside a key's known set is refused with an error naming the key.
 *
 * @module
 */
import { AttnkitError } from "../errors.ts";
import type { Prediction } from "./prediction.ts";
import type { BetaSchedule } from "./schedule.ts";
import type { TimestepSpacing } from "./timesteps.ts";

/** The scheduler classes attnkit runs (PNDMScheduler runs as DDIMScheduler). */
export const SUPPORTED_SCHEDULERS: readonly string[] = [
  "DDIMScheduler",
  "DDPMScheduler",
  "EulerDiscreteScheduler",
  "EulerAncestralDiscreteScheduler",
  "FlowMatchEulerDiscreteScheduler",
  "LCMScheduler",
  "PNDMScheduler",
];

/** Dynamic thresholding of x̂₀ (diffusers' `thresholding: true`). */
export interface ThresholdingSpec {
  /** `dynamic_thresholding_ratio` (default 0.995). */
  readonly ratio: number;
  /** `sample_max_value` (default 1). */
  readonly maxValue: number;
}

/** What the DDPM-family classes share. */
export interface DiscreteSpec {
  /** `_class_name` as given. */
  readonly className: string;
  /** `num_train_timesteps` T. */
  readonly trainSteps: number;
  /** `beta_schedule`. */
  readonly betaSchedule: BetaSchedule;
  /** `beta_start`. */
  readonly betaStart: number;
  /** `beta_end`. */
  readonly betaEnd: number;
  /** `trained_betas`, when given (T values; overrides the schedule). */
  readonly trainedBetas?: readonly number[];
  /** `rescale_betas_zero_snr`. */
  readonly rescaleBetasZeroSnr: boolean;
  /** `prediction_type`: "epsilon", "v" (v_prediction) or "sample". */
  readonly prediction: Prediction;
  /** `timestep_spacing`. */
  readonly spacing: TimestepSpacing;
  /** `steps_offset` (added to "leading" timesteps). */
  readonly stepsOffset: number;
}

/** DDIMScheduler (and PNDMScheduler, run as DDIM). */
export interface DdimSpec extends DiscreteSpec {
  /** The sampler. */
  readonly kind: "ddim";
  /** `set_alpha_to_one`: the last step goes to ᾱ = 1 rather than ᾱ_0. */
  readonly setAlphaToOne: boolean;
  /** `clip_sample_range` when `clip_sample` is true. */
  readonly clipSample?: number;
  /** Set when `thresholding` is true. */
  readonly thresholding?: ThresholdingSpec;
}

/** DDPMScheduler. */
export interface DdpmSpec extends DiscreteSpec {
  /** The sampler. */
  readonly kind: "ddpm";
  /** `variance_type`: fixed_small(_log) → "fixedSmall", fixed_large → "fixedLarge". */
  readonly variance: "fixedSmall" | "fixedLarge";
  /** `clip_sample_range` when `clip_sample` is true. */
  readonly clipSample?: number;
  /** Set when `thresholding` is true. */
  readonly thresholding?: ThresholdingSpec;
}

/** EulerDiscreteScheduler and EulerAncestralDiscreteScheduler. */
export interface EulerSpec extends DiscreteSpec {
  /** The sampler. */
  readonly kind: "euler" | "eulerAncestral";
  /** `interpolation_type` (Euler only; ancestral is always "linear"). */
  readonly interpolation: "linear" | "log_linear";
  /** `use_karras_sigmas` / `use_exponential_sigmas` (Euler only). */
  readonly sigmaSpacing: "plain" | "karras" | "exponential";
  /** `sigma_min`, when given (bounds the Karras / exponential sigmas). */
  readonly sigmaMin?: number;
  /** `sigma_max`, when given. */
  readonly sigmaMax?: number;
  /** `timestep_type` (Euler only): "continuous" with v-prediction feeds 0.25·ln σ. */
  readonly timestepType: "discrete" | "continuous";
  /** `final_sigmas_type` (Euler only): the σ the last step goes to. */
  readonly finalSigmas: "zero" | "sigma_min";
}

/**
 * LCMScheduler. Its `timestep_spacing`, `steps_offset` and `set_alpha_to_one` are read and
 * checked but, as in diffusers, do not change the schedule.
 */
export interface LcmSpec extends DiscreteSpec {
  /** The sampler. */
  readonly kind: "lcm";
  /** `original_inference_steps` of the distillation schedule (default 50). */
  readonly originalSteps: number;
  /** `timestep_scaling` of the boundary condition (default 10). */
  readonly timestepScaling: number;
  /** `clip_sample_range` when `clip_sample` is true (LCM's default: false). */
  readonly clipSample?: number;
  /** Set when `thresholding` is true. */
  readonly thresholding?: ThresholdingSpec;
}

/** FlowMatchEulerDiscreteScheduler. */
export interface FlowMatchSpec {
  /** The sampler. */
  readonly kind: "flowMatch";
  /** `_class_name` as given. */
  readonly className: string;
  /** `num_train_timesteps` T (the model's timestep is σ·T). */
  readonly trainSteps: number;
  /** `shift` (static shift, used unless `dynamicShifting`). */
  readonly shift: number;
  /** Set when `use_dynamic_shifting` is true: the shift comes from μ (see `samplerFromConfig`). */
  readonly dynamicShifting?: {
    /** `base_shift`. */
    readonly baseShift: number;
    /** `max_shift`. */
    readonly maxShift: number;
    /** `base_image_seq_len`. */
    readonly baseImageSeqLen: number;
    /** `max_image_seq_len`. */
    readonly maxImageSeqLen: number;
    /** `time_shift_type`. */
    readonly timeShift: "exponential" | "linear";
  };
  /** `shift_terminal`, when given: the last sigma is stretched to 1 − shift_terminal… */
  readonly shiftTerminal?: number;
  /** `use_karras_sigmas` / `use_exponential_sigmas`. */
  readonly sigmaSpacing: "plain" | "karras" | "exponential";
  /** `stochastic_sampling`: re-noise at every step. */
  readonly stochastic: boolean;
}

/** A checked diffusers scheduler config. */
export type SchedulerSpec = DdimSpec | DdpmSpec | EulerSpec | FlowMatchSpec | LcmSpec;

/** Options of {@link resolveSchedulerConfig}. */
export interface ResolveSchedulerOptions {
  /**
   * Run the config with another class, as diffusers' `OtherScheduler.from_config(config)` does
   * (e.g. "EulerDiscreteScheduler" on Stable Diffusion 1.5's PNDM config).
   */
  readonly className?: string;
  /** Where the config came from, for messages (default "scheduler_config.json"). */
  readonly source?: string;
}

/** A parsed scheduler_config.json. */
export type SchedulerConfigJson = Readonly<Record<string, unknown>>;
type Raw = SchedulerConfigJson;

const DISCRETE_KEYS = [
  "num_train_timesteps",
  "beta_start",
  "beta_end",
  "beta_schedule",
  "trained_betas",
  "prediction_type",
  "timestep_spacing",
  "steps_offset",
  "rescale_betas_zero_snr",
];
const BOUND_KEYS = [
  "clip_sample",
  "clip_sample_range",
  "thresholding",
  "dynamic_thresholding_ratio",
  "sample_max_value",
];
const EULER_KEYS = [
  "interpolation_type",
  "use_karras_sigmas",
  "use_exponential_sigmas",
  "use_beta_sigmas",
  "sigma_min",
  "sigma_max",
  "timestep_type",
  "final_sigmas_type",
];
const FLOW_KEYS = [
  "num_train_timesteps",
  "shift",
  "use_dynamic_shifting",
  "base_shift",
  "max_shift",
  "base_image_seq_len",
  "max_image_seq_len",
  "invert_sigmas",
  "shift_terminal",
  "use_karras_sigmas",
  "use_exponential_sigmas",
  "use_beta_sigmas",
  "time_shift_type",
  "stochastic_sampling",
];
/** Keys every class ignores: bookkeeping, not maths. */
const META_KEYS = ["_class_name", "_diffusers_version", "_use_default_values"];

/** Typed readers of one config, each error naming the key and the file. */
function readers(raw: Raw, source: string) {
  const fail = (key: string, expected: string): never => {
    throw new AttnkitError(
      key,
      `expected ${expected} (in ${source}), got ${JSON.stringify(raw[key])}`,
    );
  };
  const get = (key: string): unknown => raw[key] ?? undefined;
  return {
    fail,
    num(key: string, fallback: number, test: (v: number) => boolean, expected: string): number {
      const v = get(key) ?? fallback;
      if (typeof v !== "number" || !Number.isFinite(v) || !test(v)) fail(key, expected);
      return v as number;
    },
    optNum(key: string, test: (v: number) => boolean, expected: string): number | undefined {
      const v = get(key);
      if (v === undefined) return undefined;
      if (typeof v !== "number" || !Number.isFinite(v) || !test(v)) fail(key, expected);
      return v as number;
    },
    bool(key: string, fallback: boolean): boolean {
      const v = get(key) ?? fallback;
      if (typeof v !== "boolean") fail(key, "true or false");
      return v as boolean;
    },
    oneOf<T extends string>(key: string, fallback: T, allowed: readonly T[]): T {
      const v = get(key) ?? fallback;
      if (!allowed.includes(v as T)) fail(key, `one of ${allowed.map((a) => `"${a}"`).join(", ")}`);
      return v as T;
    },
    /** A boolean key whose `true` attnkit does not implement. */
    notTrue(key: string, why: string): void {
      const v = get(key);
      if (v === undefined || v === false) return;
      if (v !== true) fail(key, "true or false");
      throw new AttnkitError(key, `true is not supported (in ${source}): ${why}`);
    },
  };
}

const positive = (v: number) => v > 0;
const positiveInt = (v: number) => Number.isInteger(v) && v >= 1;

/** Per-class defaults of the beta schedule (LCMScheduler's are Stable Diffusion's). */
const DDPM_BETAS = { betaStart: 0.0001, betaEnd: 0.02, betaSchedule: "linear" as BetaSchedule };
const SD_BETAS = {
  betaStart: 0.00085,
  betaEnd: 0.012,
  betaSchedule: "scaled_linear" as BetaSchedule,
};

function discrete(
  raw: Raw,
  r: ReturnType<typeof readers>,
  cls: string,
  spacing: TimestepSpacing,
  defaults = DDPM_BETAS,
) {
  const T = r.num("num_train_timesteps", 1000, positiveInt, "a positive integer");
  const schedules: BetaSchedule[] = cls === "DDPMScheduler"
    ? ["linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid", "laplace"]
    : ["linear", "scaled_linear", "squaredcos_cap_v2"];
  const betaSchedule = r.oneOf("beta_schedule", defaults.betaSchedule, schedules);
  const betaStart = r.num("beta_start", defaults.betaStart, positive, "a number > 0");
  const betaEnd = r.num(
    "beta_end",
    defaults.betaEnd,
    (v) => v >= betaStart && v < 1,
    "a number in [beta_start, 1)",
  );
  const trained = raw["trained_betas"];
  if (trained !== undefined && trained !== null) {
    const ok = Array.isArray(trained) && trained.length === T &&
      trained.every((b) => typeof b === "number" && b >= 0 && b <= 1);
    if (!ok) r.fail("trained_betas", `${T} numbers in [0, 1] (num_train_timesteps)`);
  }
  const predictionType = r.oneOf("prediction_type", "epsilon", [
    "epsilon",
    "v_prediction",
    "sample",
  ]);
  return {
    className: cls,
    trainSteps: T,
    betaSchedule,
    betaStart,
    betaEnd,
    ...(Array.isArray(trained) ? { trainedBetas: trained as number[] } : {}),
    rescaleBetasZeroSnr: r.bool("rescale_betas_zero_snr", false),
    prediction: (predictionType === "v_prediction" ? "v" : predictionType) as Prediction,
    spacing: r.oneOf<TimestepSpacing>("timestep_spacing", spacing, [
      "leading",
      "trailing",
      "linspace",
    ]),
    stepsOffset: r.num("steps_offset", 0, (v) => Number.isInteger(v) && v >= 0, "an integer ≥ 0"),
  };
}

function bounds(r: ReturnType<typeof readers>, clipDefault = true) {
  const clip = r.bool("clip_sample", clipDefault);
  const range = r.num("clip_sample_range", 1, positive, "a number > 0");
  const thresholding = r.bool("thresholding", false);
  const ratio = r.num(
    "dynamic_thresholding_ratio",
    0.995,
    (v) => v >= 0 && v <= 1,
    "a number in [0, 1]",
  );
  const maxValue = r.num("sample_max_value", 1, positive, "a number > 0");
  return {
    ...(clip ? { clipSample: range } : {}),
    ...(thresholding ? { thresholding: { ratio, maxValue } } : {}),
  };
}

function sigmaSpacing(r: ReturnType<typeof readers>): "plain" | "karras" | "exponential" {
  r.notTrue(
    "use_beta_sigmas",
    "beta-distributed sigmas need scipy's beta quantiles; use use_karras_sigmas or none",
  );
  const karras = r.bool("use_karras_sigmas", false);
  const exp = r.bool("use_exponential_sigmas", false);
  if (karras && exp) {
    throw new AttnkitError(
      "use_karras_sigmas",
      "only one of use_karras_sigmas and use_exponential_sigmas may be true",
    );
  }
  return karras ? "karras" : exp ? "exponential" : "plain";
}

/**
 * Checks a diffusers scheduler config and resolves it, with the named class's defaults, into a
 * {@link SchedulerSpec}. Throws an AttnkitError naming the key for a value outside its known set,
 * and naming `_class_name` for a class attnkit does not run.
 *
 * @example
 * ```ts
 * const spec = resolveSchedulerConfig({ _class_name: "EulerDiscreteScheduler", timestep_spacing: "trailing" });
 * spec.kind; // "euler"
 * ```
 */
export function resolveSchedulerConfig(
  raw: SchedulerConfigJson,
  opts: ResolveSchedulerOptions = {},
): SchedulerSpec & { readonly ignoredKeys: readonly string[] } {
  const source = opts.source ?? "scheduler_config.json";
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new AttnkitError(source, "expected a JSON object (a diffusers scheduler config)");
  }
  const cls = opts.className ?? raw["_class_name"];
  if (typeof cls !== "string") {
    throw new AttnkitError(
      "_class_name",
      `missing in ${source}; expected one of ${SUPPORTED_SCHEDULERS.join(", ")}`,
    );
  }
  const r = readers(raw, source);
  let spec: SchedulerSpec;
  let keys: string[];
  if (cls === "DDIMScheduler") {
    spec = {
      kind: "ddim",
      ...discrete(raw, r, cls, "leading"),
      setAlphaToOne: r.bool("set_alpha_to_one", true),
      ...bounds(r),
    };
    keys = [...DISCRETE_KEYS, ...BOUND_KEYS, "set_alpha_to_one"];
  } else if (cls === "PNDMScheduler") {
    // DDIM on PNDM's own schedule: PNDM's defaults, and none of the keys PNDM does not take
    // (it never clips x̂₀ nor rescales β), so a config written for PNDM means what it meant.
    const base = discrete(raw, r, cls, "leading");
    if (base.prediction === "sample") {
      r.fail("prediction_type", `"epsilon" or "v_prediction" (diffusers' ${cls} has no "sample")`);
    }
    spec = {
      kind: "ddim",
      ...base,
      rescaleBetasZeroSnr: false,
      setAlphaToOne: r.bool("set_alpha_to_one", false),
    };
    keys = [
      ...DISCRETE_KEYS.filter((k) => k !== "rescale_betas_zero_snr"),
      "set_alpha_to_one",
      "skip_prk_steps",
    ];
  } else if (cls === "DDPMScheduler") {
    const v = r.oneOf("variance_type", "fixed_small", [
      "fixed_small",
      "fixed_small_log",
      "fixed_large",
      "fixed_large_log",
      "learned",
      "learned_range",
    ]);
    if (v === "learned" || v === "learned_range") {
      throw new AttnkitError(
        "variance_type",
        `"${v}" is not supported (in ${source}): it reads a variance the model predicts in extra ` +
          "output channels; use fixed_small or fixed_large",
      );
    }
    if (v === "fixed_large_log") {
      throw new AttnkitError(
        "variance_type",
        `"fixed_large_log" is not supported (in ${source}): diffusers' step takes √(log β), which ` +
          "is NaN; use fixed_large",
      );
    }
    spec = {
      kind: "ddpm",
      ...discrete(raw, r, cls, "leading"),
      variance: v === "fixed_large" ? "fixedLarge" : "fixedSmall",
      ...bounds(r),
    };
    keys = [...DISCRETE_KEYS, ...BOUND_KEYS, "variance_type"];
  } else if (cls === "EulerDiscreteScheduler" || cls === "EulerAncestralDiscreteScheduler") {
    const base = discrete(raw, r, cls, "linspace");
    if (cls === "EulerAncestralDiscreteScheduler") {
      if (base.prediction === "sample") {
        r.fail(
          "prediction_type",
          `"epsilon" or "v_prediction" (diffusers' ${cls} has no "sample")`,
        );
      }
      spec = {
        kind: "eulerAncestral",
        ...base,
        interpolation: "linear",
        sigmaSpacing: "plain",
        timestepType: "discrete",
        finalSigmas: "zero",
      };
      keys = [...DISCRETE_KEYS];
    } else {
      const sigmaMin = r.optNum("sigma_min", positive, "a number > 0");
      const sigmaMax = r.optNum("sigma_max", positive, "a number > 0");
      spec = {
        kind: "euler",
        ...base,
        interpolation: r.oneOf("interpolation_type", "linear", ["linear", "log_linear"]),
        sigmaSpacing: sigmaSpacing(r),
        ...(sigmaMin === undefined ? {} : { sigmaMin }),
        ...(sigmaMax === undefined ? {} : { sigmaMax }),
        timestepType: r.oneOf("timestep_type", "discrete", ["discrete", "continuous"]),
        finalSigmas: r.oneOf("final_sigmas_type", "zero", ["zero", "sigma_min"]),
      };
      keys = [...DISCRETE_KEYS, ...EULER_KEYS];
    }
  } else if (cls === "LCMScheduler") {
    r.bool("set_alpha_to_one", true);
    spec = {
      kind: "lcm",
      ...discrete(raw, r, cls, "leading", SD_BETAS),
      originalSteps: r.num("original_inference_steps", 50, positiveInt, "a positive integer"),
      timestepScaling: r.num("timestep_scaling", 10, (v) => v >= 0, "a number ≥ 0"),
      ...bounds(r, false),
    };
    keys = [
      ...DISCRETE_KEYS,
      ...BOUND_KEYS,
      "set_alpha_to_one",
      "original_inference_steps",
      "timestep_scaling",
    ];
  } else if (cls === "FlowMatchEulerDiscreteScheduler") {
    r.notTrue(
      "invert_sigmas",
      "inverted sigmas run the flow from data to noise; attnkit samples noise to data only",
    );
    const dynamic = r.bool("use_dynamic_shifting", false);
    const timeShift = r.oneOf("time_shift_type", "exponential", ["exponential", "linear"]);
    const baseShift = r.num("base_shift", 0.5, Number.isFinite, "a number");
    const maxShift = r.num("max_shift", 1.15, Number.isFinite, "a number");
    const baseImageSeqLen = r.num("base_image_seq_len", 256, positiveInt, "a positive integer");
    const maxImageSeqLen = r.num(
      "max_image_seq_len",
      4096,
      (v) => Number.isInteger(v) && v > baseImageSeqLen,
      "an integer > base_image_seq_len",
    );
    const shiftTerminal = r.optNum("shift_terminal", (v) => v >= 0 && v < 1, "a number in [0, 1)");
    spec = {
      kind: "flowMatch",
      className: cls,
      trainSteps: r.num("num_train_timesteps", 1000, positiveInt, "a positive integer"),
      shift: r.num("shift", 1, positive, "a number > 0"),
      ...(dynamic
        ? { dynamicShifting: { baseShift, maxShift, baseImageSeqLen, maxImageSeqLen, timeShift } }
        : {}),
      ...(shiftTerminal ? { shiftTerminal } : {}),
      sigmaSpacing: sigmaSpacing(r),
      stochastic: r.bool("stochastic_sampling", false),
    };
    keys = FLOW_KEYS;
  } else {
    throw new AttnkitError(
      "_class_name",
      `${cls} (in ${source}) is not supported; attnkit runs ${SUPPORTED_SCHEDULERS.join(", ")} ` +
        "(PNDMScheduler as DDIM). Multistep solvers (DPMSolverMultistep, UniPC, LMS, PNDM's PLMS) " +
        "keep past model outputs, which a stateless attnkit Sampler cannot; pass a supported " +
        "className to run this config's noise schedule with that sampler",
    );
  }
  const ignoredKeys = Object.keys(raw).filter((k) => !keys.includes(k) && !META_KEYS.includes(k));
  return { ...spec, ignoredKeys };
}
