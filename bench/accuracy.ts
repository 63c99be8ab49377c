/**
 * Multi-class and multi-instance accuracy of attention-control methods on the embedded shapes
 * model, by the ISAC paper's appendix C.3 protocol, with the shapes detector as the judge; issue
 * 11's version: honest metrics, intervals, paired differences, draws and shards.
 *
 *   deno run -A bench/accuracy.ts --draw validation --methods base,isac-opt --variant joint
 *   deno run -A bench/accuracy.ts --draw test --per-setting 16 --seeds 2 --methods base,ae \
 *     --shard 1/2 --out a.jsonl          # …and --shard 2/2 --out b.jsonl elsewhere
 *   deno run -A bench/accuracy.ts merge a.jsonl b.jsonl --out bench/results --name accuracy_test
 *   deno run -A bench/accuracy.ts --help
 *
 * Protocol (ISAC C.3 transposed to shapes, prompts from lib/shapes/benchmark_prompts.ts):
 * - multi-class: k = 2..5 classes from ONE category of look-alikes, one instance each, each with
 *   a colour ("a photo of a red circle, a blue oval and a green heart");
 * - multi-instance: one class and colour, n = 2..5 instances ("a photo of three yellow hearts").
 * Metrics (bench/judge.ts): class only (the paper's multi-class), class + colour (binding), exact
 * image accuracy, multi-instance capped (the paper's) and exact, and a failure taxonomy. The
 * report (bench/accuracy_report.ts) gives each cell a 95% bootstrap interval over prompts and each
 * method its paired difference from `base` on the same seeds.
 *
 * Draws (bench/accuracy_core.ts): `--draw validation` for every choice, `--draw test` once per
 * configuration. A run appends judged images to a JSON-lines trial file (resumable); `--shard i/n`
 * runs every n-th (prompt, seed); `merge` makes the report from any set of trial files, the same
 * bytes however the trials were split. The model work is in `main`; the rest is pure and tested.
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
import { judgeImage } from "./judge.ts";
import { isacVariant } from "../lib/isac/variant.ts";
import { DRAWS, drawSeed, parseShard, type Shard } from "./accuracy_core.ts";
import {
  commonConfig,
  type JudgedTrial,
  mergeTrials,
  methodOptions,
  renderReport,
  type RunConfig,
} from "./accuracy_report.ts";
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

Usage:
  deno run -A bench/accuracy.ts [run] [options]      judge images, append them to a trial file
  deno run -A bench/accuracy.ts merge FILE… [--out DIR] [--name NAME]
                                                     report from trial files (any shards, any order)

Run options:
  --prompts FILE      a prompt file (one prompt a line, parsePromptFile) instead of a draw
  --draw D            validation (prompt seed ${DRAWS.validation}; every choice is made here) or test
                      (prompt seed ${DRAWS.test}; report once per configuration) (default validation)
  --methods a,b,c     methods (default base; known: ${METHODS.map((m) => m.name).join(", ")})
  --per-setting N     prompts per (setting, k) (default 4)
  --seeds N           seeds per prompt: 0, 100, … (default 1)
  --ks 2,3,4,5        the k values (default 2,3,4,5)
  --settings S        multi-class,multi-instance (default both)
  --steps N           DDIM steps (default ${METHOD_DEFAULTS.steps})
  --guidance X        classifier-free guidance (default ${METHOD_DEFAULTS.guidance})
  --candidates N      ISAC selection candidates (default ${METHOD_DEFAULTS.candidates})
  --isac-eta X        ISAC latent optimisation learning rate η (default ${METHOD_DEFAULTS.isacEta})
  --variant NAME      ISAC objective variant (lib/isac/variant.ts; default attnkit-0.1)
  --shifts N, --iterref-step N, --iterref-lr X, --ae-refine N, --ablation-form F
                      as before (step selection, A&E, Table 2/3 ablation form)
  --shard i/n         run work units u with u mod n = i − 1 (units: (prompt, seed) pairs)
  --out FILE          trial file (JSON lines, appended; resumes: trials already in it are skipped)
                      (default bench/results/accuracy/<draw>.<methods>.shard-i-of-n.jsonl)
  --weights DIR       model directory (default weights/shapes)
  --ep EP             execution provider: wasm, node (default), webgpu or auto
  -h, --help          this text

Merge writes DIR/NAME.md and DIR/NAME.json (default bench/results, accuracy_<draw>); the report is
a pure function of the trials, so the same trials give the same bytes however they were sharded.`;

function numArg(name: string, v: string): number {
  return finiteArg(name, v, NaN, { min: 0, minExclusive: true });
}

function listArg(name: string, v: string | undefined, dflt: readonly string[]): string[] {
  if (v === undefined) return [...dflt];
  const xs = v.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  if (xs.length === 0) throw new AttnkitError(`--${name}`, `expected a comma-separated list`);
  return xs;
}

/** The run's prompts from its configuration (the same on every shard). */
export function itemsOfConfig(c: RunConfig): BenchItem[] {
  if (c.promptFile) return itemsFromFile(parsePromptFile(c.promptFile.text));
  return itemsFromBenchmark(benchmarkPrompts({
    seed: c.promptSeed,
    perSetting: c.perSetting,
    ks: c.ks,
    settings: c.settings as ("multi-class" | "multi-instance")[],
  }));
}

/** Work units of a shard: (item, seed) pairs in item-major order, every n-th from i. */
export function shardUnits(
  items: readonly BenchItem[],
  seeds: readonly number[],
  shard: Shard,
): { item: BenchItem; seed: number }[] {
  return items.flatMap((item) => seeds.map((seed) => ({ item, seed })))
    .filter((_, u) => u % shard.count === shard.index);
}

/** Reads a trial file: its configuration line and its trials. */
export function parseTrialFile(
  text: string,
  name: string,
): { config: RunConfig; trials: JudgedTrial[] } {
  const lines = text.split("\n").filter((l) => l.trim());
  if (lines.length === 0) throw new AttnkitError("files", `${name} is empty`);
  let config: RunConfig | undefined;
  const trials: JudgedTrial[] = [];
  for (const [i, l] of lines.entries()) {
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(l);
    } catch {
      // A line cut by a killed run: ignore only the last one.
      if (i === lines.length - 1) continue;
      throw new AttnkitError("files", `${name}:${i + 1} is not JSON`);
    }
    if (o.config) config = o.config as RunConfig;
    else trials.push(o as unknown as JudgedTrial);
  }
  if (!config) throw new AttnkitError("files", `${name} has no configuration line`);
  return { config, trials };
}

/** The report of merged trial files (pure: same trials, same bytes). */
export function mergeReport(
  files: readonly { config: RunConfig; trials: JudgedTrial[] }[],
): { md: string; json: string } {
  const config = commonConfig(files.map((f) => f.config));
  const items = itemsOfConfig(config);
  // Re-judge from the stored detections, so the report follows bench/judge.ts as it is now.
  const groupsOf = new Map(items.map((it) => [it.id, it.groups]));
  const trials = mergeTrials(files.map((f) => f.trials)).map((t) =>
    t.detected && groupsOf.has(t.item) && t.error === undefined
      ? { ...t, judgement: judgeImage(groupsOf.get(t.item)!, t.detected) }
      : t
  );
  const present = new Set(trials.map((t) => t.method));
  const methods = METHODS.filter((m) => present.has(m.name)).map((m) => ({
    name: m.name,
    label: m.label,
    note: m.note,
  }));
  for (const m of present) {
    if (!methods.some((x) => x.name === m)) methods.push({ name: m, label: m, note: "" });
  }
  // Only prompts every method ran with every seed: cells and differences then share one set.
  const have = new Set(trials.map((t) => `${t.method}/${t.item}/${t.seed}`));
  const used = items.filter((it) =>
    methods.every((m) => config.seeds.every((s) => have.has(`${m.name}/${it.id}/${s}`)))
  );
  const usedIds = new Set(used.map((it) => it.id));
  const dropped = trials.length - trials.filter((t) => usedIds.has(t.item)).length;
  const opts = methodOptions(files);
  // Methods that ran with the same options share one command line.
  const byOpts = new Map<string, string[]>();
  for (const m of methods) {
    const k = JSON.stringify(opts.get(m.name));
    byOpts.set(k, [...(byOpts.get(k) ?? []), m.name]);
  }
  const commands = [...byOpts.entries()].map(([k, ms]) => {
    const o = JSON.parse(k) as Record<string, unknown>;
    if (typeof o.command === "string") return `\`${o.command}\` (methods ${ms.join(", ")})`;
    return `\`deno run -A bench/accuracy.ts --draw ${config.draw} --per-setting ${config.perSetting} ` +
      `--seeds ${config.seeds.length} --methods ${ms.join(",")} --isac-eta ${o.isacEta} ` +
      `--variant ${
        o.isacVariant ?? "attnkit-0.1"
      } --candidates ${o.candidates} --ae-refine ${o.aeRefine} ` +
      `--ablation-form ${o.ablationForm} --ep node\``;
  });
  const imageSeconds = trials.filter((t) => usedIds.has(t.item)).reduce((s, t) => s + t.ms, 0) /
    1000;
  const kept = trials.filter((t) => usedIds.has(t.item));
  const { md, data } = renderReport(config, used, kept, methods, [
    ...(dropped > 0
      ? [`${dropped} image(s) of prompts that not every method ran with every seed are left out.`]
      : []),
    `Generated by ${
      commands.join(" and ")
    } (any \`--shard i/n\` split), then \`bench/accuracy.ts merge\`; ${kept.length} images, ${
      (imageSeconds / 60).toFixed(1)
    } image-minutes of sampling.`,
  ]);
  return { md, json: JSON.stringify({ config, items: used, data }, null, 1) + "\n" };
}

async function mergeCmd(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { out: { type: "string" }, name: { type: "string" } },
  });
  if (positionals.length === 0) throw new AttnkitError("files", "expected trial files (.jsonl)");
  const files = [];
  for (const p of positionals) {
    const text = await Deno.readTextFile(p).catch((e) => {
      throw new AttnkitError("files", `cannot read ${p}: ${e.message}`);
    });
    files.push(parseTrialFile(text, p));
  }
  const { md, json } = mergeReport(files);
  const outDir = values.out ?? "bench/results";
  const name = values.name ?? `accuracy_${files[0].config.draw}`;
  await Deno.mkdir(outDir, { recursive: true });
  await Deno.writeTextFile(`${outDir}/${name}.md`, md);
  await Deno.writeTextFile(`${outDir}/${name}.json`, json);
  console.log(md);
}

async function main(): Promise<void> {
  const args = [...Deno.args];
  if (args[0] === "merge") return await mergeCmd(args.slice(1));
  if (args[0] === "run") args.shift();
  const { values } = parseArgs({
    args,
    options: {
      draw: { type: "string" },
      prompts: { type: "string" },
      methods: { type: "string" },
      "per-setting": { type: "string" },
      seeds: { type: "string" },
      steps: { type: "string" },
      guidance: { type: "string" },
      ks: { type: "string" },
      settings: { type: "string" },
      candidates: { type: "string" },
      shifts: { type: "string" },
      "iterref-step": { type: "string" },
      "iterref-lr": { type: "string" },
      "ae-refine": { type: "string" },
      "isac-eta": { type: "string" },
      variant: { type: "string" },
      "ablation-form": { type: "string" },
      shard: { type: "string" },
      out: { type: "string" },
      weights: { type: "string" },
      ep: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const draw = values.draw ?? "validation";
  const promptSeed = drawSeed(draw);
  const methodNames = listArg("methods", values.methods, ["base"]);
  const perSetting = intArg("per-setting", values["per-setting"], 4, 1);
  const nSeeds = intArg("seeds", values.seeds, 1, 1);
  const seeds = Array.from({ length: nSeeds }, (_, j) => 100 * j);
  const ks = listArg("ks", values.ks, ["2", "3", "4", "5"]).map((k) => intArg("ks", k, 2, 2));
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
  const variant = values.variant ?? "attnkit-0.1";
  isacVariant(variant, "--variant");
  const options: MethodOptions = {
    steps: intArg("steps", values.steps, METHOD_DEFAULTS.steps, 1),
    guidance,
    candidates: intArg("candidates", values.candidates, METHOD_DEFAULTS.candidates, 1),
    shifts: intArg("shifts", values.shifts, METHOD_DEFAULTS.shifts, 0),
    isacEta: values["isac-eta"] === undefined
      ? METHOD_DEFAULTS.isacEta
      : numArg("isac-eta", values["isac-eta"]),
    isacVariant: variant,
    aeRefine: intArg("ae-refine", values["ae-refine"], METHOD_DEFAULTS.aeRefine, 0),
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
  const shard = parseShard(values.shard);
  const resolved: ResolvedMethod[] = await resolveMethods(methodNames);
  for (const r of resolved) {
    if (r.unavailable) throw new AttnkitError("--methods", `${r.entry.name}: ${r.unavailable}`);
  }
  const weights = values.weights ?? "weights/shapes";
  const modelConfig = JSON.parse(
    await Deno.readTextFile(`${weights}/config.json`).catch((e) => {
      throw new AttnkitError("--weights", `cannot read ${weights}/config.json: ${e.message}`);
    }),
  );
  const ep = await epArg(values.ep ?? "node");
  let promptFile: RunConfig["promptFile"];
  if (values.prompts !== undefined) {
    const text = await Deno.readTextFile(values.prompts).catch((e) => {
      throw new AttnkitError("--prompts", `cannot read ${values.prompts}: ${e.message}`);
    });
    if (parsePromptFile(text).length === 0) {
      throw new AttnkitError("--prompts", `no prompts in ${values.prompts}`);
    }
    promptFile = { path: values.prompts, text };
  }
  const config: RunConfig = {
    ...(promptFile ? { promptFile } : {}),
    draw: promptFile ? "file" : draw,
    promptSeed,
    perSetting,
    ks,
    settings,
    seeds,
    options: { ...options } as unknown as Record<string, unknown>,
    model: `${modelConfig.name} (${modelConfig.training?.steps ?? "?"} training steps)`,
  };
  const out = values.out ??
    `bench/results/accuracy/${draw}.${methodNames.join("+")}.shard-${
      shard.index + 1
    }-of-${shard.count}.jsonl`;
  await Deno.mkdir(out.replace(/\/[^/]*$/, "") || ".", { recursive: true }).catch((e) => {
    throw new AttnkitError("--out", `cannot create the folder of ${out}: ${e.message}`);
  });
  const done = new Set<string>();
  const existing = await Deno.readTextFile(out).catch(() => undefined);
  if (existing !== undefined && existing.trim()) {
    const f = parseTrialFile(existing, out);
    commonConfig([f.config, config]);
    if (JSON.stringify(f.config.options) !== JSON.stringify(config.options)) {
      throw new AttnkitError(
        "--out",
        `${out} was written with other method options; use another file`,
      );
    }
    for (const t of f.trials) done.add(`${t.method}/${t.item}/${t.seed}`);
    // Drop a line cut short by a killed run before appending.
    if (!existing.endsWith("\n")) {
      await Deno.writeTextFile(out, existing.slice(0, existing.lastIndexOf("\n") + 1));
    }
  } else {
    await Deno.writeTextFile(out, JSON.stringify({ config }) + "\n");
  }

  const { loadShapesModel } = await import("../lib/models/shapes.ts");
  const model = await loadShapesModel({ dir: weights, session: { executionProviders: [ep] } });
  const units = shardUnits(itemsOfConfig(config), seeds, shard);
  const total = units.length * resolved.length;
  const t0 = performance.now();
  // Warm-up: the first call of a method builds sessions and gradient graphs.
  for (const r of resolved) {
    await r.run!(model, "a photo of two red circles and a blue star", 99_999, {
      ...options,
      steps: 2,
      candidates: Math.min(2, options.candidates),
      shifts: Math.min(1, options.shifts),
      aeRefine: 0,
    }).catch((e) => console.error(`warm-up of ${r.entry.name} failed: ${e?.message ?? e}`));
  }
  let count = 0;
  for (const { item, seed } of units) {
    for (const r of resolved) {
      count++;
      if (done.has(`${r.entry.name}/${item.id}/${seed}`)) continue;
      let trial: JudgedTrial;
      try {
        const res = await r.run!(model, item.prompt, seed, options);
        const found = detect(res.image).map((x) => ({
          cls: x.cls,
          colour: x.colour,
          clsScore: x.clsScore,
        }));
        trial = {
          method: r.entry.name,
          item: item.id,
          seed,
          ms: Math.round(res.ms),
          judgement: judgeImage(item.groups, found),
          detected: found,
          ...(res.note ? { note: res.note } : {}),
        };
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        trial = {
          method: r.entry.name,
          item: item.id,
          seed,
          ms: 0,
          judgement: judgeImage(item.groups, []),
          error: msg.split("\n")[0],
        };
      }
      await Deno.writeTextFile(out, JSON.stringify(trial) + "\n", { append: true });
      const el = (performance.now() - t0) / 1000;
      console.error(
        `[${count}/${total} ${
          el.toFixed(0)
        } s] ${r.entry.name} ${item.setting} k=${item.k} seed ${seed}: ` +
          `class ${pct(trial.judgement.classOnly)} +colour ${pct(trial.judgement.classColour)} ` +
          `inst ${pct(trial.judgement.instanceCapped)}${trial.judgement.exact ? " exact" : ""} ` +
          `(${(trial.ms / 1000).toFixed(1)} s)${trial.error ? ` ERROR ${trial.error}` : ""}`,
      );
    }
  }
  await model.release();
  console.error(`wrote ${out}`);
}

if (import.meta.main) await runCli(main);
