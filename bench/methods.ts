/**
 * The benchmark's method registry: every text-to-image method the accuracy benchmark compares,
 * behind one signature, `(model, prompt, seed, opts) => Promise<{ image, ms }>`, where `image` is
 * the 64×64 RGB picture (interleaved bytes) and `ms` the wall time of sampling and decoding it.
 *
 * Methods (all on the model's default DDIM sampler, `opts.steps` steps, guidance `opts.guidance`):
 * - `base`: plain sampling.
 * - `ae`: Attend-and-Excite (lib/control/attend_excite.ts, methods spec §1) on the class tokens:
 *   a gradient step at every step i < steps/2, α_i = 20·√(linspace(1, 0.5, steps)[i]), and
 *   iterative refinement (at most `opts.aeRefine` iterations; A&E's 20) at the steps that
 *   correspond to 0, 10 and 20 of 50, with thresholds 0.05, 0.5 and 0.8.
 * - `step-select`: the step-selection paper's IterRef (A&E + IoU "GSN" loss, `opts.shifts` Adam
 *   shifts) at one step: `opts.iterRefStep`, default the step nearest timestep 0.821·T (step 8 of
 *   50 on SD 1.4). The validation that picks the step (`selectStep`) is not run per benchmark.
 * - `isac-opt`: ISAC latent optimisation (Algorithm 1, η = `opts.isacEta`, the paper's 0.01 by
 *   default, soft schedule, MPO).
 * - `isac-sel`: ISAC latent selection (Algorithm 2), best of `opts.candidates` seeds
 *   (seed, seed + 1, …; candidate 0 is the `base` image of the same seed).
 * - `initno`: InitNO (lib/control/initno.ts, methods spec §2) on the class tokens: initial-noise
 *   optimisation (5 rounds × 10 Adam iterations, else a 50-iteration rerun of the best round),
 *   then A&E-style updates on L_ca at every step i < steps/2 (α_i as A&E), with refinement on the
 *   joint loss at the steps that correspond to 10 and 20 of 50 (at most `opts.initnoRefine`
 *   iterations; InitNO's 20).
 * - `syngen`: SynGen (lib/control/syngen.ts): a step z ← z − 20·∇L on the syntactic-binding loss
 *   (each colour word with its noun) at every step i < steps/2 (25 of 50 in the paper).
 * - `isac-A` … `isac-F`: ISAC Table 2's schedules (G, the soft one, is `isac-opt`/`isac-sel`);
 *   `isac-iou`, `isac-kl`, `isac-mae`: Table 3's similarity metrics (MPO is the default). These
 *   run in the form `opts.ablationForm`: "select" (default) or "optimise". In the select form all
 *   nine share one batched sampling run per (prompt, seed) (see `selectionSweep`): selection does
 *   not change the trajectories, only the scores, so the picks are exactly those of separate
 *   `selectLatent` runs, and each reports that shared run's wall time as its latency.
 *
 * Each method's module is imported when the method is first resolved, so a method whose module is
 * missing (or fails to load) is reported as not available instead of stopping the benchmark.
 *
 * @module
 */
import type { DiffusionModel } from "../lib/runtime/model.ts";
import type { Tensor } from "../lib/tensor.ts";
import type { Schedule } from "../lib/schedule.ts";
import type { SimilarityMetric } from "../lib/isac/similarity.ts";

/** Knobs shared by every method; each method reads the ones it needs. */
export interface MethodOptions {
  /** DDIM steps. */
  steps: number;
  /** Classifier-free guidance scale. */
  guidance: number;
  /** ISAC latent selection: candidates N (best of N). */
  candidates: number;
  /** Step selection: Adam shifts at the IterRef step. */
  shifts: number;
  /** Step selection: the IterRef step index (default nearest timestep 0.821·T). */
  iterRefStep?: number;
  /**
   * Step selection: Adam's learning rate (undefined: the module's default, the GSN step size
   * 20·√(linspace(1, 0.5, steps)[i]), which throws this model's latents far off their range).
   */
  iterRefLr?: number;
  /** ISAC latent optimisation: learning rate η (the paper's 0.01). */
  isacEta: number;
  /** Attend-and-Excite: most refinement iterations at a refinement step. */
  aeRefine: number;
  /** Which ISAC form the Table 2/3 ablations use. */
  ablationForm: "select" | "optimise";
  /** ISAC objective variant (lib/isac/variant.ts; default attnkit-0.1). */
  isacVariant?: string;
  /** InitNO: most refinement iterations at a refinement step (InitNO's 20; undefined = 20). */
  initnoRefine?: number;
  /**
   * A&E, InitNO and SynGen: the attention-layer size their losses read (undefined: the A&E rule
   * of lib/losses/resolution.ts, 16×16 on the embedded model; its 8×8 layers are the
   * token-selective ones, see bench/results/baselines/README.md).
   */
  mapSize?: readonly [number, number];
}

/** The defaults the benchmark uses. */
export const METHOD_DEFAULTS: Readonly<MethodOptions> = {
  steps: 25,
  guidance: 5,
  candidates: 4,
  shifts: 10,
  iterRefLr: 0.3,
  isacEta: 0.01,
  aeRefine: 5,
  ablationForm: "select",
};

/** What a method returns: the image and how long it took. */
export interface MethodOutput {
  /** 64×64 RGB, interleaved bytes, row-major. */
  image: Uint8Array;
  /** Wall time of this image in milliseconds (model loading excluded). */
  ms: number;
  /** Anything worth recording (e.g. optimisation stopped on a NaN, the candidate picked). */
  note?: string;
}

/** A benchmark method. */
export type Method = (
  model: DiffusionModel,
  prompt: string,
  seed: number,
  opts: MethodOptions,
) => Promise<MethodOutput>;

/** Which family a method belongs to (for tables). */
export type MethodGroup = "main" | "schedule" | "metric";

/** A registry entry: name, label, and a loader that imports the method's modules. */
export interface MethodEntry {
  /** Identifier used by `--methods`. */
  name: string;
  /** Row label in tables and pictures. */
  label: string;
  /** Main comparison, Table 2 schedule ablation or Table 3 metric ablation. */
  group: MethodGroup;
  /** One line on what it is. */
  note: string;
  /** Imports the method's modules and returns the method; throws when they are not there. */
  load(): Promise<Method>;
}

/** The first image of a batch as 64×64 RGB bytes. */
async function imageOf(model: DiffusionModel, latents: Tensor, index = 0): Promise<Uint8Array> {
  const { decodeLatents } = await import("../lib/runtime/sample.ts");
  const { imageBytes } = await import("../lib/viz/colour.ts");
  const { tensor } = await import("../lib/tensor.ts");
  const per = latents.data.length / latents.shape[0];
  const one = tensor(
    [1, ...latents.shape.slice(1)],
    latents.data.slice(index * per, (index + 1) * per),
  );
  return imageBytes(await decodeLatents(model, one), 0);
}

/** Loads the ISAC schedules of Table 2 (A-G) by letter. */
async function tableTwo(): Promise<Record<string, Schedule>> {
  const { schedule: s } = await import("../lib/schedule.ts");
  return {
    A: s.instanceOnly,
    B: s.semanticOnly,
    C: s.fixed(0.5),
    D: s.reverseHard(),
    E: s.reverseSoft,
    F: s.hard(),
    G: s.soft,
  };
}

/** The ablation configurations: Table 2 letters (with MPO) and Table 3 metrics (soft schedule). */
const ABLATIONS: readonly { key: string; letter: string; metric: SimilarityMetric }[] = [
  ...["A", "B", "C", "D", "E", "F", "G"].map((letter) => ({
    key: letter,
    letter,
    metric: "mpo" as SimilarityMetric,
  })),
  ...(["iou", "kl", "mae"] as const).map((metric) => ({ key: metric, letter: "G", metric })),
];

/** What one shared selection run gives every ablation configuration. */
interface Sweep {
  /** The picked candidate per configuration key. */
  picks: Record<string, number>;
  /** Decoded image per picked candidate. */
  images: Map<number, Uint8Array>;
  /** Wall time of the shared run, ms. */
  ms: number;
}

let lastSweep: { key: string; sweep: Promise<Sweep> } | undefined;

/**
 * ISAC latent selection for every ablation configuration from ONE batched sampling run: selection
 * never changes the candidates' trajectories, only how they are scored, and L_t = λ_ins·L_ins +
 * λ_cls·L_cls, so one L_ins and L_cls per metric, candidate and step score every schedule. Each
 * configuration picks exactly what `selectLatent` with that schedule and metric would pick.
 * The last run is cached, as the benchmark calls the ablations one after another per seed.
 */
async function selectionSweep(
  model: DiffusionModel,
  prompt: string,
  seed: number,
  opts: MethodOptions,
): Promise<Sweep> {
  const key = JSON.stringify([
    model.info.name,
    prompt,
    seed,
    opts.steps,
    opts.guidance,
    opts.candidates,
    opts.isacVariant,
  ]);
  if (lastSweep?.key === key) return lastSweep.sweep;
  const run = async (): Promise<Sweep> => {
    const { isacSpecFor } = await import("../lib/control/isac_spec.ts");
    const { accumulateMaps } = await import("../lib/attention/accumulate.ts");
    const { isacLoss } = await import("../lib/isac/loss.ts");
    const { sampleLatents } = await import("../lib/runtime/sample.ts");
    const schedules = await tableTwo();
    const t0 = performance.now();
    const { isacVariant } = await import("../lib/isac/variant.ts");
    const spec = {
      ...isacSpecFor(model, prompt).isac,
      variant: isacVariant(opts.isacVariant ?? "attnkit-0.1"),
    };
    const n = opts.candidates;
    const metrics = [...new Set(ABLATIONS.map((a) => a.metric))];
    const scores: Record<string, number[]> = {};
    for (const a of ABLATIONS) scores[a.key] = new Array(n).fill(0);
    const latents = await sampleLatents(model, prompt, {
      seed,
      steps: opts.steps,
      guidance: opts.guidance,
      candidates: n,
      taps: true,
      label: `ISAC selection sweep ×${n}`,
      onStep(e) {
        e.taps!.forEach((taps, i) => {
          const maps = accumulateMaps(taps);
          // Zero weights: the terms without the backward pass.
          const terms = new Map(metrics.map((metric) => {
            const r = isacLoss(maps, { ...spec, metric }, { ins: 0, cls: 0 });
            return [metric, r] as const;
          }));
          for (const a of ABLATIONS) {
            const w = schedules[a.letter](e.timestep, e.trainSteps);
            const r = terms.get(a.metric)!;
            scores[a.key][i] += w.ins * r.ins + w.cls * r.cls;
          }
        });
      },
    });
    const picks: Record<string, number> = {};
    for (const a of ABLATIONS) picks[a.key] = scores[a.key].indexOf(Math.min(...scores[a.key]));
    const images = new Map<number, Uint8Array>();
    for (const i of new Set(Object.values(picks))) images.set(i, await imageOf(model, latents, i));
    return { picks, images, ms: performance.now() - t0 };
  };
  const sweep = run();
  lastSweep = { key, sweep };
  try {
    return await sweep;
  } catch (e) {
    lastSweep = undefined;
    throw e;
  }
}

/** ISAC in one of its two forms with a given schedule letter and similarity metric. */
async function isacMethod(
  form: "select" | "optimise" | "ablation",
  letter: string,
  metric: SimilarityMetric,
): Promise<Method> {
  const { isacSpecFor } = await import("../lib/control/isac_spec.ts");
  const { selectLatent } = await import("../lib/control/select_latent.ts");
  const { optimiseLatent } = await import("../lib/control/optimise_latent.ts");
  const { isacVariant } = await import("../lib/isac/variant.ts");
  const schedule = (await tableTwo())[letter];
  return async (model, prompt, seed, opts) => {
    const which = form === "ablation" ? opts.ablationForm : form;
    if (form === "ablation" && which === "select") {
      const s = await selectionSweep(model, prompt, seed, opts);
      const pick = s.picks[metric === "mpo" ? letter : metric];
      return {
        image: s.images.get(pick)!,
        ms: s.ms,
        note: `picked candidate ${pick} (shared selection run; G/MPO picked ${s.picks.G})`,
      };
    }
    const t0 = performance.now();
    const parsed = isacSpecFor(model, prompt);
    const variant = isacVariant(opts.isacVariant ?? "attnkit-0.1");
    const spec = { ...parsed, isac: { ...parsed.isac, metric, variant } };
    const common = { seed, steps: opts.steps, guidance: opts.guidance, schedule, spec };
    if (which === "select") {
      const sel = await selectLatent(model, prompt, { ...common, candidates: opts.candidates });
      const image = await imageOf(model, sel.latents, sel.best);
      return { image, ms: performance.now() - t0, note: `picked candidate ${sel.best}` };
    }
    const r = await optimiseLatent(model, prompt, {
      ...common,
      eta: opts.isacEta,
      onNonFinite: "stop",
    });
    const image = await imageOf(model, r.latents);
    const note = r.stopped ? `optimisation stopped: ${r.stopped.message}` : undefined;
    return { image, ms: performance.now() - t0, ...(note ? { note } : {}) };
  };
}

/** The refinement steps of A&E (0, 10, 20 of 50) mapped to `steps`, with their thresholds. */
export function aeRefineSteps(steps: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const [at, thr] of [[0, 0.05], [10, 0.5], [20, 0.8]] as const) {
    const i = Math.round((at * steps) / 50);
    if (!out.has(i)) out.set(i, thr);
  }
  return out;
}

async function attendExciteMethod(): Promise<Method> {
  const { attendExcite } = await import("../lib/control/attend_excite.ts");
  const { sampleLatents } = await import("../lib/runtime/sample.ts");
  return async (model, prompt, seed, opts) => {
    const t0 = performance.now();
    const ae = attendExcite(model, prompt, {
      thresholds: Object.fromEntries(aeRefineSteps(opts.steps)),
      maxIterToAlter: Math.round(opts.steps / 2),
      maxRefinementSteps: opts.aeRefine,
      ...(opts.mapSize ? { taps: opts.mapSize } : {}),
    });
    const latents = await sampleLatents(model, prompt, {
      seed,
      steps: opts.steps,
      guidance: opts.guidance,
      adjust: ae.adjust,
      label: "A&E",
    });
    const image = await imageOf(model, latents);
    const refinements = ae.log.reduce((s, l) => s + l.refinements.reduce((a, b) => a + b, 0), 0);
    return { image, ms: performance.now() - t0, note: `${refinements} refinement steps` };
  };
}

/** InitNO's refinement steps (10 and 20 of 50) mapped to `steps`. */
export function initNoRefineSteps(steps: number): number[] {
  return [...new Set([10, 20].map((at) => Math.round((at * steps) / 50)))];
}

async function initNoMethod(): Promise<Method> {
  const { initNo } = await import("../lib/control/initno.ts");
  const { sampleLatents } = await import("../lib/runtime/sample.ts");
  return async (model, prompt, seed, opts) => {
    const t0 = performance.now();
    const h = initNo(model, prompt, {
      seed,
      maxIterToAlter: Math.round(opts.steps / 2),
      refineSteps: initNoRefineSteps(opts.steps),
      ...(opts.initnoRefine === undefined ? {} : { maxRefinementSteps: opts.initnoRefine }),
      ...(opts.mapSize ? { taps: opts.mapSize } : {}),
    });
    const latents = await sampleLatents(model, prompt, {
      seed,
      steps: opts.steps,
      guidance: opts.guidance,
      adjust: h.adjust,
      label: "InitNO",
    });
    const image = await imageOf(model, latents);
    const rounds = h.rounds[0] ?? [];
    const last = rounds[rounds.length - 1];
    const iters = rounds.reduce((s, r) => s + r.iterations.length, 0);
    const refinements = h.steps.reduce((s, l) => s + l.refinements, 0);
    const note = `noise: ${rounds.filter((r) => !r.rerun).length} round(s), ${iters} iterations, ` +
      `${last?.succeeded ? "succeeded" : "no success"}${
        last?.rerun ? " (after the rerun)" : ""
      }; ` +
      `${refinements} refinement steps`;
    return { image, ms: performance.now() - t0, note };
  };
}

async function synGenMethod(): Promise<Method> {
  const { synGen } = await import("../lib/control/syngen.ts");
  const { sampleLatents } = await import("../lib/runtime/sample.ts");
  return async (model, prompt, seed, opts) => {
    const t0 = performance.now();
    const h = synGen(model, prompt, {
      interventionSteps: Math.round(opts.steps / 2),
      ...(opts.mapSize ? { taps: opts.mapSize } : {}),
    });
    const latents = await sampleLatents(model, prompt, {
      seed,
      steps: opts.steps,
      guidance: opts.guidance,
      adjust: h.adjust,
      label: "SynGen",
    });
    const image = await imageOf(model, latents);
    const note = h.subtrees.length === 0
      ? "no modifier–noun pair: plain sampling"
      : `loss ${h.log[0]?.value.toFixed(3)} → ${h.log[h.log.length - 1]?.value.toFixed(3)}`;
    return { image, ms: performance.now() - t0, note };
  };
}

async function stepSelection(): Promise<Method> {
  const { gsnRefiner } = await import("../lib/control/select_step.ts");
  const { sampleLatents } = await import("../lib/runtime/sample.ts");
  return async (model, prompt, seed, opts) => {
    const t0 = performance.now();
    const r = gsnRefiner(model, prompt, {
      step: opts.iterRefStep,
      steps: opts.steps,
      shifts: opts.shifts,
      ...(opts.iterRefLr === undefined ? {} : { lr: opts.iterRefLr }),
    });
    const latents = await sampleLatents(model, prompt, {
      seed,
      steps: opts.steps,
      guidance: opts.guidance,
      adjust: r.adjust,
      label: "step selection",
    });
    const image = await imageOf(model, latents);
    const at = r.iterRef[0];
    return {
      image,
      ms: performance.now() - t0,
      ...(at ? { note: `IterRef at step ${at.step} (t = ${at.timestep})` } : {}),
    };
  };
}

async function base(): Promise<Method> {
  const { sampleLatents } = await import("../lib/runtime/sample.ts");
  return async (model, prompt, seed, opts) => {
    const t0 = performance.now();
    const latents = await sampleLatents(model, prompt, {
      seed,
      steps: opts.steps,
      guidance: opts.guidance,
      label: "base",
    });
    return { image: await imageOf(model, latents), ms: performance.now() - t0 };
  };
}

const SCHEDULE_NOTES: Readonly<Record<string, string>> = {
  A: "instance only (1, 0)",
  B: "semantic only (0, 1)",
  C: "fixed balance (0.5, 0.5)",
  D: "semantic-to-instance, hard",
  E: "semantic-to-instance, soft",
  F: "instance-to-semantic, hard",
};

/** Every method the benchmark knows, main comparison first, then the ablations. */
export const METHODS: readonly MethodEntry[] = [
  { name: "base", label: "base", group: "main", note: "plain DDIM sampling", load: base },
  {
    name: "ae",
    label: "A&E",
    group: "main",
    note: "Attend-and-Excite (A&E-resolution maps, steps < T/2, refinement at 0/10/20 of 50)",
    load: attendExciteMethod,
  },
  {
    name: "step-select",
    label: "step select",
    group: "main",
    note: "IterRef with the A&E + IoU (GSN) loss at one step (step-selection paper)",
    load: stepSelection,
  },
  {
    name: "isac-opt",
    label: "ISAC opt",
    group: "main",
    note: "ISAC latent optimisation (Algorithm 1, soft schedule, MPO)",
    load: () => isacMethod("optimise", "G", "mpo"),
  },
  {
    name: "isac-sel",
    label: "ISAC sel",
    group: "main",
    note: "ISAC latent selection (Algorithm 2, best of N, soft schedule, MPO)",
    load: () => isacMethod("select", "G", "mpo"),
  },
  {
    name: "initno",
    label: "InitNO",
    group: "main",
    note:
      "InitNO: initial-noise optimisation (5×10 Adam rounds), then A&E-style updates, steps < T/2",
    load: initNoMethod,
  },
  {
    name: "syngen",
    label: "SynGen",
    group: "main",
    note: "SynGen: syntactic-binding loss (colour ↔ noun), step 20, steps < T/2",
    load: synGenMethod,
  },
  ...["A", "B", "C", "D", "E", "F"].map((letter): MethodEntry => ({
    name: `isac-${letter}`,
    label: `ISAC ${letter}`,
    group: "schedule",
    note: `ISAC Table 2 ${letter}: ${SCHEDULE_NOTES[letter]}`,
    load: () => isacMethod("ablation", letter, "mpo"),
  })),
  {
    name: "isac-G",
    label: "ISAC G (soft, MPO)",
    group: "schedule",
    note: "ISAC Table 2 G (the paper's: soft schedule, MPO) in the ablation form; in the select " +
      "form it picks exactly what isac-sel picks (from the shared run, whose wall time it reports)",
    load: () => isacMethod("ablation", "G", "mpo"),
  },
  ...(["iou", "kl", "mae"] as const).map((metric): MethodEntry => ({
    name: `isac-${metric}`,
    label: `ISAC ${metric.toUpperCase()}`,
    group: "metric",
    note: `ISAC Table 3: ${metric.toUpperCase()} in place of MPO (soft schedule)`,
    load: () => isacMethod("ablation", "G", metric),
  })),
];

/** A method ready to run, or the reason it is not available. */
export interface ResolvedMethod {
  /** Its registry entry. */
  entry: MethodEntry;
  /** The method, when its modules loaded. */
  run?: Method;
  /** Why not, when they did not. */
  unavailable?: string;
}

/**
 * Looks up methods by name in `registry` (unknown names throw) and loads each one's modules; a
 * method whose modules fail to load is returned with `unavailable` set.
 */
export async function resolveMethods(
  names: readonly string[],
  registry: readonly MethodEntry[] = METHODS,
): Promise<ResolvedMethod[]> {
  const out: ResolvedMethod[] = [];
  for (const name of names) {
    const entry = registry.find((m) => m.name === name);
    if (!entry) {
      const { AttnkitError } = await import("../lib/errors.ts");
      throw new AttnkitError(
        "--methods",
        `unknown method "${name}" (known: ${registry.map((m) => m.name).join(", ")})`,
      );
    }
    try {
      out.push({ entry, run: await entry.load() });
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      out.push({ entry, unavailable: `not available: ${msg.split("\n")[0]}` });
    }
  }
  return out;
}
