/**
 * Multi-class and multi-instance accuracy of attention-control methods on the embedded shapes
 * model, by the ISAC paper's appendix C.3 protocol, with the shapes detector as the judge.
 *
 *   deno run -A bench/accuracy.ts                   # the default run (about 25 minutes, 2 cores)
 *   deno run -A bench/accuracy.ts --quick           # a smoke run (a few minutes)
 *   deno run -A bench/accuracy.ts --help
 *
 * Protocol (ISAC C.3 transposed to shapes, prompts from lib/shapes/benchmark_prompts.ts):
 * - multi-class: k = 2..5 classes from ONE category of look-alikes, one instance each, each with
 *   a colour ("a photo of a red circle, a blue oval and a green heart"); accuracy = the fraction
 *   of the k (class, colour) pairs the detector finds;
 * - multi-instance: one class and colour, n = 2..5 instances ("a photo of three yellow hearts");
 *   accuracy = min(found, n) / n over separate detected instances.
 * `--per-setting` prompts per (setting, k), drawn from `--prompt-seed`; every prompt runs with the
 * same `--seeds` seeds (0, 100, 200, …: far enough apart that ISAC selection's candidates
 * seed … seed + N − 1 never overlap) and every method starts from the same noise. The "Average"
 * column is the mean over the k columns, as in the paper's tables. Prompts run round-robin over
 * (setting, k), so a run cut short by `--max-minutes` stays balanced.
 *
 * Pure parts (prompt set → trials → table → markdown) are exported for tests; `main` does the
 * model work. Methods: bench/methods.ts.
 *
 * @module
 */
import { epArg, intArg, numArg as finiteArg, runCli } from "../lib/cli.ts";
import { parseArgs } from "node:util";
import { AttnkitError } from "../lib/errors.ts";
import type { Group } from "../lib/shapes/scene.ts";
import type { ColourName, ShapeClass } from "../lib/shapes/world.ts";
import { type Scored, scoreGroups } from "../lib/shapes/score.ts";
import {
  type BenchmarkPrompt,
  benchmarkPrompts,
  type FilePrompt,
  parsePromptFile,
} from "../lib/shapes/benchmark_prompts.ts";
import { detect } from "../lib/shapes/detect.ts";
import { enlarge, tileGrid } from "../lib/shapes/grid.ts";
import { drawText } from "../lib/viz/text.ts";
import { encodePng } from "../lib/png.ts";
import {
  METHOD_DEFAULTS,
  type MethodOptions,
  METHODS,
  type ResolvedMethod,
  resolveMethods,
} from "./methods.ts";

/** A benchmark setting: the paper's two, or prompts from a user's file. */
export type Setting = "multi-class" | "multi-instance" | "file";

/** One prompt of the run. */
export interface BenchItem {
  /** Index in the run's item list. */
  id: number;
  /** Its setting. */
  setting: Setting;
  /** k classes (multi-class), n instances (multi-instance), or the object count (file). */
  k: number;
  /** The prompt text. */
  prompt: string;
  /** Target groups, as the scorer reads them. */
  groups: Group[];
  /** Line in the prompt file (file prompts only). */
  line?: number;
}

/** The benchmark prompts as run items, ordered round-robin over (setting, k). */
export function itemsFromBenchmark(prompts: readonly BenchmarkPrompt[]): BenchItem[] {
  const buckets = new Map<string, BenchmarkPrompt[]>();
  for (const p of prompts) {
    const key = `${p.setting}/${p.k}`;
    if (!buckets.has(key)) buckets.set(key, []);
    buckets.get(key)!.push(p);
  }
  const lists = [...buckets.values()];
  const out: BenchItem[] = [];
  for (let j = 0; lists.some((l) => j < l.length); j++) {
    for (const l of lists) {
      if (j < l.length) {
        const p = l[j];
        out.push({
          id: out.length,
          setting: p.setting,
          k: p.k,
          prompt: p.prompt,
          groups: p.groups,
        });
      }
    }
  }
  return out;
}

/** A user's prompt file as run items (setting "file", k = the total object count). */
export function itemsFromFile(prompts: readonly FilePrompt[]): BenchItem[] {
  return prompts.map((p, id) => ({
    id,
    setting: "file",
    k: p.groups.reduce((s, g) => s + g.count, 0),
    prompt: p.prompt,
    groups: p.groups,
    line: p.line,
  }));
}

/** What the judge saw of one detected object. */
export interface DetectedObject {
  cls: ShapeClass;
  colour: ColourName;
  clsScore: number;
}

/** One generated image, judged. */
export interface Trial {
  /** Method name. */
  method: string;
  /** Item id. */
  item: number;
  /** Seed. */
  seed: number;
  /** Fraction of target groups found (multi-class accuracy). */
  classAccuracy: number;
  /** Σ min(found, count) / Σ count (multi-instance accuracy). */
  instanceAccuracy: number;
  /** Every group has exactly its count, and no extra instance of a target class. */
  exact: boolean;
  /** Wall time of the image, ms (0 for a failed run). */
  ms: number;
  /** Detected objects. */
  detected: DetectedObject[];
  /** The method's note, if any. */
  note?: string;
  /** Set when the method threw: the message; the trial counts as accuracy 0. */
  error?: string;
}

/** Judges detected objects against an item's groups. */
export function judge(
  groups: readonly Group[],
  found: readonly Scored[],
): Pick<Trial, "classAccuracy" | "instanceAccuracy" | "exact"> {
  const s = scoreGroups(groups, found);
  return { classAccuracy: s.classAccuracy, instanceAccuracy: s.instanceAccuracy, exact: s.exact };
}

/** The accuracy a setting reports for a trial: class accuracy for multi-class, else instance. */
export function settingAccuracy(setting: Setting, t: Trial): number {
  return setting === "multi-class" ? t.classAccuracy : t.instanceAccuracy;
}

/** Mean of a list (NaN for an empty one). */
function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

/** One (method, setting) of the table. */
export interface SettingRow {
  /** Accuracy and trial count per k. */
  byK: Record<number, { accuracy: number; trials: number }>;
  /** Mean over the k columns (the paper's "Average"). */
  average: number;
  /** Pooled multi-class accuracy over the setting's trials. */
  classAccuracy: number;
  /** Pooled multi-instance accuracy over the setting's trials. */
  instanceAccuracy: number;
  /** Fraction of trials with exact counts. */
  exact: number;
  /** Number of trials. */
  trials: number;
  /** Trials whose method threw. */
  errors: number;
  /** Mean wall time per image of the successful trials, ms. */
  msMean: number;
}

/** One method's row of every table. */
export interface MethodRow {
  /** Method name. */
  method: string;
  /** Its label. */
  label: string;
  /** Why it did not run, when it did not. */
  unavailable?: string;
  /** Per setting that has trials. */
  settings: Partial<Record<Setting, SettingRow>>;
  /** Largest RSS sampled while the method ran, MB. */
  peakRssMb?: number;
}

/** Aggregates trials into one row per method (in the order given). */
export function aggregate(
  items: readonly BenchItem[],
  trials: readonly Trial[],
  methods: readonly { name: string; label: string; unavailable?: string }[],
  peakRssMb: Readonly<Record<string, number>> = {},
): MethodRow[] {
  const byId = new Map(items.map((it) => [it.id, it]));
  return methods.map((m) => {
    const row: MethodRow = { method: m.name, label: m.label, settings: {} };
    if (m.unavailable) row.unavailable = m.unavailable;
    if (peakRssMb[m.name] !== undefined) row.peakRssMb = peakRssMb[m.name];
    const mine = trials.filter((t) => t.method === m.name);
    const settings = [...new Set(items.map((it) => it.setting))];
    for (const setting of settings) {
      const ts = mine.filter((t) => byId.get(t.item)?.setting === setting);
      if (ts.length === 0) continue;
      const ks = [...new Set(ts.map((t) => byId.get(t.item)!.k))].sort((a, b) => a - b);
      const byK: SettingRow["byK"] = {};
      for (const k of ks) {
        const at = ts.filter((t) => byId.get(t.item)!.k === k);
        byK[k] = { accuracy: mean(at.map((t) => settingAccuracy(setting, t))), trials: at.length };
      }
      const ok = ts.filter((t) => t.error === undefined);
      row.settings[setting] = {
        byK,
        average: mean(ks.map((k) => byK[k].accuracy)),
        classAccuracy: mean(ts.map((t) => t.classAccuracy)),
        instanceAccuracy: mean(ts.map((t) => t.instanceAccuracy)),
        exact: mean(ts.map((t) => (t.exact ? 1 : 0))),
        trials: ts.length,
        errors: ts.length - ok.length,
        msMean: mean(ok.map((t) => t.ms)),
      };
    }
    return row;
  });
}

/** What the markdown header records about a run. */
export interface RunMeta {
  /** The command line. */
  command: string;
  /** ISO date of the run. */
  date: string;
  /** Model name and training steps, as its config says. */
  model: string;
  /** Method options used. */
  options: MethodOptions;
  /** Seeds every prompt ran with. */
  seeds: number[];
  /** Where the prompts came from (benchmark draw or file). */
  promptSource: string;
  /** Total wall time, s. */
  totalSeconds: number;
  /** Free-text lines (e.g. a cut-short run, the machine). */
  notes?: string[];
}

/** A percentage as the paper's tables write it. */
export function pct(x: number | undefined): string {
  return x === undefined || !Number.isFinite(x) ? "–" : `${Math.round(100 * x)}%`;
}

function fmtMs(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return "–";
  return ms >= 10000 ? `${(ms / 1000).toFixed(0)} s` : `${(ms / 1000).toFixed(1)} s`;
}

const SETTING_TITLES: Readonly<Record<Setting, string>> = {
  "multi-class": "Multi-class accuracy (k classes from one category, one instance each)",
  "multi-instance": "Multi-instance accuracy (one class, n instances)",
  file: "Prompts from the file",
};

/** The table of one setting as markdown lines. */
export function settingTable(
  setting: Setting,
  items: readonly BenchItem[],
  rows: readonly MethodRow[],
): string[] {
  const ks = [...new Set(items.filter((i) => i.setting === setting).map((i) => i.k))]
    .sort((a, b) => a - b);
  const tail = ["Exact", "Latency / image", "Peak RSS (MB)"];
  const head = setting === "file"
    ? ["Method", "Multi-class", "Multi-instance", ...tail]
    : ["Method", ...ks.map((k) => `#${k}`), "Average", ...tail];
  const out = [
    `| ${head.join(" | ")} |`,
    `|${head.map((_, i) => (i ? "---:" : "---")).join("|")}|`,
  ];
  for (const r of rows) {
    if (r.unavailable) {
      out.push(`| ${r.label} | ${r.unavailable.replace(/\|/g, "\\|")} |`);
      continue;
    }
    const s = r.settings[setting];
    if (!s) continue;
    const rss = r.peakRssMb === undefined ? "–" : r.peakRssMb.toFixed(0);
    const err = s.errors ? ` (${s.errors} failed)` : "";
    const cells = setting === "file"
      ? [pct(s.classAccuracy), pct(s.instanceAccuracy)]
      : [...ks.map((k) => pct(s.byK[k]?.accuracy)), `**${pct(s.average)}**`];
    out.push(
      `| ${r.label} | ${[...cells, pct(s.exact) + err, fmtMs(s.msMean), rss].join(" | ")} |`,
    );
  }
  return out;
}

/** The whole report as markdown. */
export function renderMarkdown(
  meta: RunMeta,
  items: readonly BenchItem[],
  rows: readonly MethodRow[],
  methodNotes: readonly { label: string; note: string }[] = [],
): string {
  const o = meta.options;
  const settings = (["multi-class", "multi-instance", "file"] as const).filter((s) =>
    items.some((i) => i.setting === s)
  );
  const perCell = (setting: Setting): string => {
    const ks = [...new Set(items.filter((i) => i.setting === setting).map((i) => i.k))];
    const n = items.filter((i) => i.setting === setting).length / Math.max(1, ks.length);
    return `${n} prompt(s) × ${meta.seeds.length} seed(s) per column`;
  };
  const lines = [
    "# Attention-control accuracy on the shapes model (ISAC appendix C.3 protocol)",
    "",
    `Generated by \`${meta.command}\` on ${meta.date}; total time ${
      (meta.totalSeconds / 60).toFixed(1)
    } min.`,
    "",
    `- Model: ${meta.model}.`,
    `- Sampling: DDIM ${o.steps} steps, classifier-free guidance ${o.guidance}. (The paper uses ` +
    "50 steps; fewer here so the default run fits about 25 minutes on a 2-core CPU.)",
    `- Prompts: ${meta.promptSource}. Seeds per prompt: ${meta.seeds.join(", ")}; every method ` +
    "starts from the same noise for a given seed.",
    "- Judge: lib/shapes/detect.ts with lib/shapes/score.ts (instances with a class fit ≥ 0.6). " +
    "Multi-class accuracy: fraction of the requested (class, colour) pairs found; " +
    "multi-instance: min(found, n) / n; Exact: every count exact with no extra instance of a " +
    "target class. Average: mean over the k columns, as in the paper's tables.",
    `- ISAC optimisation: η = ${o.isacEta}, one gradient step per sampling step. ` +
    `ISAC selection: best of ${o.candidates} candidates (seed … seed + ${o.candidates - 1}). ` +
    `Step selection: IterRef with ${o.shifts} Adam shifts (paper 50) at ${
      o.iterRefStep === undefined ? "the step nearest t = 0.821·T" : `step ${o.iterRefStep}`
    }, Adam lr ${
      o.iterRefLr ?? "20·√(linspace(1, 0.5, steps)[i]) (GSN)"
    } (the paper's lr is unpublished; the GSN step size drives this model's latents far out of range). A&E: at most ${o.aeRefine} refinement iterations per refinement step (paper 20).`,
    `- Ablations (ISAC Table 2 schedules A–F, Table 3 metrics) use ISAC latent ` +
    `${o.ablationForm === "select" ? "selection (the cheaper form)" : "optimisation"}; ` +
    "G / MPO is the ISAC row of that form.",
    "- Latency: mean wall time per image on this machine. Peak RSS: the largest " +
    "Deno.memoryUsage().rss sampled while the method ran (the whole process: model, sessions " +
    "and what earlier methods left allocated).",
    ...(meta.notes ?? []).map((n) => `- ${n}`),
    "",
  ];
  for (const s of settings) {
    lines.push(
      `## ${SETTING_TITLES[s]}`,
      "",
      `${perCell(s)}.`,
      "",
      ...settingTable(s, items, rows),
      "",
    );
  }
  if (methodNotes.length) {
    lines.push("## Methods", "", ...methodNotes.map((m) => `- **${m.label}**: ${m.note}`), "");
  }
  lines.push("## Prompts", "", "| # | setting | k | prompt |", "|---:|---|---:|---|");
  for (const it of items) lines.push(`| ${it.id} | ${it.setting} | ${it.k} | ${it.prompt} |`);
  lines.push("");
  return lines.join("\n");
}

/** A picture tile: 64×64 RGB enlarged ×2, with an accuracy bar along the bottom. */
export function tileOf(image: Uint8Array, accuracy: number, label = ""): Uint8Array {
  const S = 128;
  const big = enlarge(image, 64, 64, 2);
  const barH = 6;
  const good = Math.round(S * Math.max(0, Math.min(1, accuracy)));
  for (let y = S - barH; y < S; y++) {
    for (let x = 0; x < S; x++) {
      const c = x < good ? [40, 170, 60] : [200, 40, 40];
      big.set(c, (y * S + x) * 3);
    }
  }
  return label ? drawText(big, S, S, label, 1) : big;
}

/** A 128×128 text tile: `text` word-wrapped to 20 characters a line. */
export function textTile(text: string): Uint8Array {
  const S = 128;
  const words = text.toUpperCase().split(/\s+/);
  const lines: string[] = [];
  for (const w of words) {
    const last = lines[lines.length - 1];
    if (last !== undefined && (last + " " + w).length <= 20) {
      lines[lines.length - 1] = `${last} ${w}`;
    } else lines.push(w);
  }
  const tile = new Uint8Array(S * S * 3).fill(255);
  lines.slice(0, 12).forEach((line, i) => {
    const strip = drawText(new Uint8Array(S * 10 * 3).fill(255), S, 10, line, 1);
    tile.set(strip, i * 10 * S * 3);
  });
  return tile;
}

/** The example grid: a header row of prompts, then one row per method. */
export function exampleGrid(
  columns: readonly string[],
  rows: readonly { label: string; tiles: readonly { image: Uint8Array; accuracy: number }[] }[],
): { rgb: Uint8Array; width: number; height: number } {
  const tiles: Uint8Array[] = [textTile(""), ...columns.map(textTile)];
  for (const r of rows) {
    tiles.push(textTile(r.label));
    for (const t of r.tiles) tiles.push(tileOf(t.image, t.accuracy));
  }
  return tileGrid(tiles, 128, 128, columns.length + 1, 2, 255);
}

const HELP = `bench/accuracy.ts — multi-class / multi-instance accuracy (ISAC appendix C.3 protocol)

Usage: deno run -A bench/accuracy.ts [options]

Options:
  --methods a,b,c     methods to run (default all; known: ${METHODS.map((m) => m.name).join(", ")})
  --per-setting N     prompts per (setting, k) (default 4; --quick 1)
  --seeds N           seeds per prompt: 0, 100, … (default 1)
  --steps N           DDIM steps (default ${METHOD_DEFAULTS.steps}; --quick 5)
  --guidance X        classifier-free guidance (default ${METHOD_DEFAULTS.guidance})
  --ks 2,3,4,5        the k values (default 2,3,4,5; --quick 2,4)
  --settings S        multi-class,multi-instance (default both)
  --prompts FILE      a prompt file (one prompt a line, parsePromptFile) instead of the draw
  --prompt-seed N     seed of the prompt draw (default 2025)
  --candidates N      ISAC selection candidates (default ${METHOD_DEFAULTS.candidates})
  --shifts N          step-selection IterRef shifts (default ${METHOD_DEFAULTS.shifts})
  --iterref-step N    step-selection step index (default nearest t = 0.821·T)
  --iterref-lr X      step-selection Adam learning rate (default ${METHOD_DEFAULTS.iterRefLr}; "gsn":
                      the GSN step size 20·√(…), which wrecks this model's latents)
  --isac-eta X        ISAC latent optimisation learning rate η (default ${METHOD_DEFAULTS.isacEta}, the paper's)
  --ae-refine N       A&E refinement iterations per refinement step (default ${METHOD_DEFAULTS.aeRefine})
  --ablation-form F   select | optimise: ISAC form of the Table 2/3 ablations (default select)
  --max-minutes M     start no new round of prompts (one per (setting, k)) that would end
                      after M minutes, judging by the last round (default 27; --quick none)
  --out DIR           output directory (default bench/results)
  --weights DIR       model directory (default the embedded weights/shapes)
  --ep EP             execution provider: wasm (default), node, webgpu or auto
  --quick             smoke run: 5 steps, k 2 and 4, 1 prompt, 1 seed, 2 candidates, 2 shifts,
                      1 A&E refinement, no time limit
  -h, --help          this text

Writes DIR/accuracy.md, DIR/accuracy.json and DIR/accuracy_grid.png (rows: methods; columns: the
first prompt of each (setting, k); seed 0; a green bar = the fraction found).`;

function numArg(name: string, v: string): number {
  return finiteArg(name, v, NaN, { min: 0, minExclusive: true });
}

function listArg(name: string, v: string | undefined, dflt: readonly string[]): string[] {
  if (v === undefined) return [...dflt];
  const xs = v.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  if (xs.length === 0) throw new AttnkitError(`--${name}`, `expected a comma-separated list`);
  return xs;
}

/** Samples RSS every 250 ms into the running method's peak. */
function rssSampler(): {
  start(method: string): void;
  stop(): void;
  peaks: Record<string, number>;
  close(): void;
} {
  const peaks: Record<string, number> = {};
  let current: string | undefined;
  const sample = () => {
    if (!current) return;
    const mb = Deno.memoryUsage().rss / 2 ** 20;
    peaks[current] = Math.max(peaks[current] ?? 0, mb);
  };
  const timer = setInterval(sample, 250);
  return {
    start(m) {
      current = m;
      sample();
    },
    stop() {
      sample();
      current = undefined;
    },
    peaks,
    close() {
      clearInterval(timer);
    },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      methods: { type: "string" },
      "per-setting": { type: "string" },
      seeds: { type: "string" },
      steps: { type: "string" },
      guidance: { type: "string" },
      ks: { type: "string" },
      settings: { type: "string" },
      prompts: { type: "string" },
      "prompt-seed": { type: "string" },
      candidates: { type: "string" },
      shifts: { type: "string" },
      "iterref-step": { type: "string" },
      "iterref-lr": { type: "string" },
      "ae-refine": { type: "string" },
      "isac-eta": { type: "string" },
      "ablation-form": { type: "string" },
      "max-minutes": { type: "string" },
      out: { type: "string" },
      weights: { type: "string" },
      ep: { type: "string" },
      quick: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const quick = values.quick ?? false;
  const t0 = performance.now();
  const methodNames = listArg("methods", values.methods, METHODS.map((m) => m.name));
  const perSetting = intArg("per-setting", values["per-setting"], quick ? 1 : 4, 1);
  const nSeeds = intArg("seeds", values.seeds, 1, 1);
  const seeds = Array.from({ length: nSeeds }, (_, j) => 100 * j);
  const ks = listArg("ks", values.ks, quick ? ["2", "4"] : ["2", "3", "4", "5"]).map((k) =>
    intArg("ks", k, 2, 2)
  );
  const settings = listArg("settings", values.settings, ["multi-class", "multi-instance"]);
  for (const s of settings) {
    if (s !== "multi-class" && s !== "multi-instance") {
      throw new AttnkitError("--settings", `expected multi-class or multi-instance, got "${s}"`);
    }
  }
  const guidance = finiteArg("guidance", values.guidance, METHOD_DEFAULTS.guidance, { min: 1 });
  const ablationForm = values["ablation-form"] ?? METHOD_DEFAULTS.ablationForm;
  if (ablationForm !== "select" && ablationForm !== "optimise") {
    throw new AttnkitError("--ablation-form", `must be select or optimise, got "${ablationForm}"`);
  }
  const options: MethodOptions = {
    steps: intArg("steps", values.steps, quick ? 5 : METHOD_DEFAULTS.steps, 1),
    guidance,
    candidates: intArg("candidates", values.candidates, quick ? 2 : METHOD_DEFAULTS.candidates, 1),
    shifts: intArg("shifts", values.shifts, quick ? 2 : METHOD_DEFAULTS.shifts, 0),
    isacEta: values["isac-eta"] === undefined
      ? METHOD_DEFAULTS.isacEta
      : numArg("isac-eta", values["isac-eta"]),
    aeRefine: intArg("ae-refine", values["ae-refine"], quick ? 1 : METHOD_DEFAULTS.aeRefine, 0),
    ablationForm,
    iterRefLr: values["iterref-lr"] === undefined
      ? METHOD_DEFAULTS.iterRefLr
      : values["iterref-lr"] === "gsn"
      ? undefined
      : numArg("iterref-lr", values["iterref-lr"]),
    ...(values["iterref-step"] === undefined
      ? {}
      : { iterRefStep: intArg("iterref-step", values["iterref-step"], 0) }),
  };
  const maxMinutes = values["max-minutes"] === undefined
    ? (quick ? Infinity : 27)
    : finiteArg("max-minutes", values["max-minutes"], 27, { min: 0, minExclusive: true });
  const promptSeed = intArg("prompt-seed", values["prompt-seed"], 2025);
  const outDir = values.out ?? "bench/results";

  let items: BenchItem[];
  let promptSource: string;
  if (values.prompts) {
    const text = await Deno.readTextFile(values.prompts).catch((e) => {
      throw new AttnkitError("--prompts", `cannot read ${values.prompts}: ${e.message}`);
    });
    items = itemsFromFile(parsePromptFile(text));
    if (items.length === 0) throw new AttnkitError("--prompts", `no prompts in ${values.prompts}`);
    promptSource = `${items.length} prompt(s) from ${values.prompts}`;
  } else {
    items = itemsFromBenchmark(benchmarkPrompts({
      seed: promptSeed,
      perSetting,
      ks,
      settings: settings as ("multi-class" | "multi-instance")[],
    }));
    promptSource =
      `benchmarkPrompts({ seed: ${promptSeed}, perSetting: ${perSetting}, ks: [${ks}] })` +
      " (lib/shapes/benchmark_prompts.ts: multi-class draws the categories in turn and a random " +
      "k-subset with random colours; multi-instance cycles through the classes)";
  }
  await Deno.mkdir(outDir, { recursive: true }).catch((e) => {
    throw new AttnkitError("--out", `cannot create ${outDir}: ${e.message}`);
  });

  const resolved: ResolvedMethod[] = await resolveMethods(methodNames);
  for (const r of resolved) if (r.unavailable) console.error(`${r.entry.name}: ${r.unavailable}`);
  const { loadShapesModel } = await import("../lib/models/shapes.ts");
  const weights = values.weights ?? "weights/shapes";
  const config = JSON.parse(await Deno.readTextFile(`${weights}/config.json`));
  const ep = await epArg(values.ep ?? "wasm");
  const model = await loadShapesModel({ dir: weights, session: { executionProviders: [ep] } });
  const modelName = `${config.name} (${
    config.training?.steps ?? "?"
  } training steps, ${weights}; onnxruntime execution provider ${ep}${
    ep === "wasm" ? ", 1 thread" : ""
  })`;

  // Grid: the first prompt of each (setting, k), first seed.
  const gridItems: BenchItem[] = [];
  for (const it of items) {
    if (!gridItems.some((g) => g.setting === it.setting && g.k === it.k)) gridItems.push(it);
  }
  const gridCols = gridItems.slice(0, 8);
  const gridImages = new Map<string, { image: Uint8Array; accuracy: number }>();

  const runnable = resolved.filter((r) => r.run);
  const rss = rssSampler();
  const trials: Trial[] = [];
  const total = items.length * seeds.length * runnable.length;
  const notes: string[] = [];
  const rounds = new Map<number, number>(); // item id → round index (its j in round-robin order)
  const seen = new Map<string, number>();
  for (const it of items) {
    const key = `${it.setting}/${it.k}`;
    rounds.set(it.id, seen.get(key) ?? 0);
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  const roundStart = new Map<number, number>();
  let ran = items.length;
  const save = async (final: boolean) => {
    const rows = aggregate(
      items.slice(0, ran),
      trials,
      resolved.map((r) => ({
        name: r.entry.name,
        label: r.entry.label,
        unavailable: r.unavailable,
      })),
      rss.peaks,
    );
    const meta: RunMeta = {
      command: `deno run -A bench/accuracy.ts ${Deno.args.join(" ")}`.trim(),
      date: new Date().toISOString(),
      model: modelName,
      options,
      seeds,
      promptSource,
      totalSeconds: (performance.now() - t0) / 1000,
      notes: [
        ...notes,
        ...(final ? [] : ["PARTIAL: the run was still going when this was written."]),
      ],
    };
    const md = renderMarkdown(
      meta,
      items.slice(0, ran),
      rows,
      resolved.map((r) => ({ label: r.entry.label, note: r.entry.note })),
    );
    await Deno.writeTextFile(`${outDir}/accuracy.md`, md);
    await Deno.writeTextFile(
      `${outDir}/accuracy.json`,
      JSON.stringify({ meta, items: items.slice(0, ran), rows, trials }, null, 1) + "\n",
    );
    return md;
  };

  // Warm-up: the first call of a method builds sessions and gradient graphs; keep that out of
  // the latencies.
  const warm = performance.now();
  const warmOpts: MethodOptions = {
    ...options,
    steps: 2,
    candidates: Math.min(2, options.candidates),
    shifts: Math.min(1, options.shifts),
    aeRefine: 0,
  };
  delete warmOpts.iterRefStep;
  for (const r of runnable) {
    await r.run!(model, "a photo of two red circles and a blue star", 99_999, warmOpts).catch(
      (e) =>
        console.error(`warm-up of ${r.entry.name} failed: ${e instanceof Error ? e.message : e}`),
    );
  }
  notes.push(
    `Warm-up: every method ran once at 2 steps before the timed runs (${
      ((performance.now() - warm) / 1000).toFixed(0)
    } s, included in the total time, not in the latencies).`,
  );

  let done = 0;
  for (const it of items) {
    const round = rounds.get(it.id)!;
    if (!roundStart.has(round)) {
      roundStart.set(round, performance.now());
      const elapsed = (performance.now() - t0) / 60000;
      const prev = roundStart.get(round - 1);
      const roundMin = prev === undefined ? 0 : (performance.now() - prev) / 60000;
      if (round > 0 && elapsed + roundMin > maxMinutes) {
        ran = it.id;
        notes.push(
          `Cut short by --max-minutes ${maxMinutes}: ${round} of ${perSetting} prompt round(s) run.`,
        );
        break;
      }
    }
    for (const seed of seeds) {
      for (const r of runnable) {
        rss.start(r.entry.name);
        let trial: Trial;
        try {
          const out = await r.run!(model, it.prompt, seed, options);
          const found = detect(out.image);
          trial = {
            method: r.entry.name,
            item: it.id,
            seed,
            ...judge(it.groups, found),
            ms: out.ms,
            detected: found.map((d) => ({ cls: d.cls, colour: d.colour, clsScore: d.clsScore })),
            ...(out.note ? { note: out.note } : {}),
          };
          if (seed === seeds[0] && gridCols.includes(it)) {
            gridImages.set(`${r.entry.name}/${it.id}`, {
              image: out.image,
              accuracy: settingAccuracy(it.setting, trial),
            });
          }
        } catch (e) {
          const msg = e instanceof Error ? e.message : String(e);
          trial = {
            method: r.entry.name,
            item: it.id,
            seed,
            classAccuracy: 0,
            instanceAccuracy: 0,
            exact: false,
            ms: 0,
            detected: [],
            error: msg.split("\n")[0],
          };
        }
        rss.stop();
        trials.push(trial);
        done++;
        const el = (performance.now() - t0) / 1000;
        console.error(
          `[${done}/${total} ${Math.floor(el / 60)}:${
            String(Math.floor(el % 60)).padStart(2, "0")
          }] ` +
            `${r.entry.name} ${it.setting} k=${it.k} seed ${seed}: class ${
              pct(trial.classAccuracy)
            } ` +
            `inst ${pct(trial.instanceAccuracy)}${trial.exact ? " exact" : ""} ` +
            `(${(trial.ms / 1000).toFixed(1)} s)${trial.error ? ` ERROR ${trial.error}` : ""}`,
        );
      }
    }
    await save(false);
  }
  rss.close();

  const gridRows = runnable.map((r) => ({
    label: r.entry.label,
    tiles: gridCols.map((it) =>
      gridImages.get(`${r.entry.name}/${it.id}`) ??
        { image: new Uint8Array(64 * 64 * 3).fill(128), accuracy: 0 }
    ),
  }));
  if (gridRows.length > 0 && gridCols.length > 0) {
    const grid = exampleGrid(
      gridCols.map((it) =>
        `${it.setting === "file" ? "" : `${it.setting} k=${it.k}: `}${it.prompt}`
      ),
      gridRows,
    );
    await Deno.writeFile(
      `${outDir}/accuracy_grid.png`,
      await encodePng(grid.rgb, grid.width, grid.height),
    );
  }
  notes.push(`Example grid: ${outDir}/accuracy_grid.png.`);
  const md = await save(true);
  await model.release();
  console.log(md);
}

if (import.meta.main) await runCli(main);
