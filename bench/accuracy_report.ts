/**
 * The accuracy benchmark's report (issue 11), a pure function of the run's configuration and its
 * judged trials, so shards merged in any order give the same markdown and JSON bit for bit.
 *
 * - Cells: mean over prompts of the per-prompt mean over seeds, with a 95% percentile bootstrap
 *   interval over prompts (lib/stats/bootstrap.ts, seeded).
 * - Paired differences: for each method, per prompt, the mean over the seeds both it and `base`
 *   ran of (method − base), same noise; mean and interval as above.
 * - Sample size: the prompts a 5-point paired difference needs (α = 0.05, power 0.8), from the
 *   standard deviation of the per-prompt differences (lib/stats/power.ts).
 * - Taxonomy: failures per 100 requested objects by kind (bench/judge.ts), extras per image.
 *
 * @module
 */
import type { Judgement } from "./judge.ts";
import type { Scored } from "../lib/shapes/score.ts";
import { bootstrapCi, type Interval, mean } from "../lib/stats/bootstrap.ts";
import { pairedSampleSize, sampleSd } from "../lib/stats/power.ts";
import { AttnkitError } from "../lib/errors.ts";

/** What fixes a run's prompts and method settings: shards must agree on all of it. */
export interface RunConfig {
  /** "validation", "test" or a number. */
  draw: string;
  /** Its prompt seed. */
  promptSeed: number;
  /** Prompts per (setting, k). */
  perSetting: number;
  /** k values. */
  ks: number[];
  /** Settings. */
  settings: string[];
  /** Seeds per prompt. */
  seeds: number[];
  /** Method options (steps, guidance, candidates, η, variant, …). */
  options: Record<string, unknown>;
  /** Model description. */
  model: string;
  /** Prompts from a user's file instead of the draw (its path and text). */
  promptFile?: { path: string; text: string };
}

/** One judged image. */
export interface JudgedTrial {
  method: string;
  item: number;
  seed: number;
  /** Wall time, ms (0 for a failure). */
  ms: number;
  judgement: Judgement;
  /** What the detector found (class fit, class, colour); the report re-judges from these. */
  detected?: Scored[];
  note?: string;
  error?: string;
}

/** A prompt of the run, as the report needs it. */
export interface ReportItem {
  id: number;
  setting: string;
  k: number;
  prompt: string;
}

/** A metric of the report: a name and how a judgement gives it. */
interface Metric {
  key: string;
  title: string;
  of: (j: Judgement) => number;
}

const MULTI_CLASS: readonly Metric[] = [
  { key: "classOnly", title: "class only (paper)", of: (j) => j.classOnly },
  { key: "classColour", title: "class + colour", of: (j) => j.classColour },
  { key: "imageClassOnly", title: "image, class only", of: (j) => Number(j.imageClassOnly) },
  { key: "exact", title: "image exact (+colour)", of: (j) => Number(j.exact) },
];
const MULTI_INSTANCE: readonly Metric[] = [
  { key: "instanceCapped", title: "capped (paper)", of: (j) => j.instanceCapped },
  { key: "instanceColour", title: "capped + colour", of: (j) => j.instanceColour },
  { key: "imageClassOnly", title: "exact count, class only", of: (j) => Number(j.imageClassOnly) },
  { key: "exact", title: "exact (+colour)", of: (j) => Number(j.exact) },
];

/** The metrics reported for a setting. */
export function metricsOf(setting: string): readonly Metric[] {
  return setting === "multi-instance" ? MULTI_INSTANCE : MULTI_CLASS;
}

/** A cell: the method's value and its paired difference from base. */
export interface Cell {
  value: Interval;
  diff?: Interval;
  /** Prompts a 5-point paired difference needs, from this difference's spread. */
  neededPrompts?: number;
}

/** The report's numbers: setting → method → metric → cell, plus images and taxonomy. */
export interface ReportData {
  cells: Record<string, Record<string, Record<string, Cell>>>;
  images: Record<string, Record<string, number>>;
  byK: Record<string, Record<string, Record<number, number>>>;
  taxonomy: Record<string, Record<string, Record<string, number>>>;
  latencyMs: Record<string, number>;
  errors: Record<string, number>;
}

function perPrompt(
  trials: readonly JudgedTrial[],
  items: readonly ReportItem[],
  f: (t: JudgedTrial) => number,
): Map<number, number> {
  const by = new Map<number, number[]>();
  for (const t of trials) by.set(t.item, [...(by.get(t.item) ?? []), f(t)]);
  const out = new Map<number, number>();
  for (const it of items) if (by.has(it.id)) out.set(it.id, mean(by.get(it.id)!));
  return out;
}

/** Computes every number of the report from the trials (sorted internally). */
export function reportData(
  items: readonly ReportItem[],
  trials: readonly JudgedTrial[],
  methods: readonly string[],
): ReportData {
  const data: ReportData = {
    cells: {},
    images: {},
    byK: {},
    taxonomy: {},
    latencyMs: {},
    errors: {},
  };
  const settings = [...new Set(items.map((i) => i.setting))];
  const itemOf = new Map(items.map((i) => [i.id, i]));
  for (const setting of settings) {
    const its = items.filter((i) => i.setting === setting);
    const inSetting = (t: JudgedTrial) => itemOf.get(t.item)?.setting === setting;
    data.cells[setting] = {};
    data.images[setting] = {};
    data.byK[setting] = {};
    data.taxonomy[setting] = {};
    const baseTrials = trials.filter((t) => t.method === "base" && inSetting(t));
    const baseAt = new Map(baseTrials.map((t) => [`${t.item}/${t.seed}`, t]));
    for (const m of methods) {
      const ts = trials.filter((t) => t.method === m && inSetting(t));
      if (ts.length === 0) continue;
      data.images[setting][m] = ts.length;
      data.cells[setting][m] = {};
      for (const metric of metricsOf(setting)) {
        const pp = perPrompt(ts, its, (t) => metric.of(t.judgement));
        const cell: Cell = { value: bootstrapCi([...pp.values()], mean) };
        if (m !== "base" && baseTrials.length > 0) {
          const paired = ts.filter((t) => baseAt.has(`${t.item}/${t.seed}`));
          const dp = perPrompt(
            paired,
            its,
            (t) => metric.of(t.judgement) - metric.of(baseAt.get(`${t.item}/${t.seed}`)!.judgement),
          );
          if (dp.size > 0) {
            const d = [...dp.values()];
            cell.diff = bootstrapCi(d, mean);
            const sd = sampleSd(d);
            if (Number.isFinite(sd) && sd > 0) cell.neededPrompts = pairedSampleSize(sd, 0.05);
          }
        }
        data.cells[setting][m][metric.key] = cell;
      }
      const main = metricsOf(setting)[0];
      data.byK[setting][m] = {};
      for (const k of [...new Set(its.map((i) => i.k))].sort((a, b) => a - b)) {
        const at = ts.filter((t) => itemOf.get(t.item)!.k === k);
        data.byK[setting][m][k] = mean(at.map((t) => main.of(t.judgement)));
      }
      const units = ts.reduce((s, t) => s + t.judgement.taxonomy.units, 0);
      const tax: Record<string, number> = {};
      for (const kind of ["wrongColour", "wrongClass", "merged", "missing"] as const) {
        tax[kind] = (100 * ts.reduce((s, t) => s + t.judgement.taxonomy[kind], 0)) / units;
      }
      tax.extraPerImage = ts.reduce((s, t) => s + t.judgement.taxonomy.extra, 0) / ts.length;
      data.taxonomy[setting][m] = tax;
    }
  }
  for (const m of methods) {
    const ok = trials.filter((t) => t.method === m && t.error === undefined);
    data.latencyMs[m] = mean(ok.map((t) => t.ms));
    data.errors[m] = trials.filter((t) => t.method === m && t.error !== undefined).length;
  }
  return data;
}

/** Points with one decimal. */
function pts(x: number): string {
  return Number.isFinite(x) ? (100 * x).toFixed(1) : "–";
}

/** "value [lo, hi]" in points. */
export function fmtInterval(i: Interval | undefined, signed = false): string {
  if (!i || !Number.isFinite(i.value)) return "–";
  const s = (x: number) => (signed && x > 0 ? "+" : "") + pts(x);
  return `${s(i.value)} [${s(i.lo)}, ${s(i.hi)}]`;
}

/** The report as markdown. */
export function renderReport(
  config: RunConfig,
  items: readonly ReportItem[],
  trials: readonly JudgedTrial[],
  methods: readonly { name: string; label: string; note: string }[],
  provenance: readonly string[],
): { md: string; data: ReportData } {
  const sorted = [...trials].sort((a, b) =>
    a.method < b.method ? -1 : a.method > b.method ? 1 : a.item - b.item || a.seed - b.seed
  );
  const names = methods.map((m) => m.name);
  const data = reportData(items, sorted, names);
  const label = new Map(methods.map((m) => [m.name, m.label]));
  const o = config.options;
  const lines = [
    `# Attention-control accuracy on the shapes model — ${config.draw} draw`,
    "",
    ...provenance.map((p) => `- ${p}`),
    `- Draw: **${config.draw}** (prompt seed ${config.promptSeed}; ${config.perSetting} prompt(s) per (setting, k), k ∈ {${
      config.ks.join(", ")
    }}). Seeds per prompt: ${
      config.seeds.join(", ")
    }; every method starts from the same noise for a seed.`,
    `- Model: ${config.model}. DDIM ${o.steps} steps, guidance ${o.guidance}.`,
    '- Judge: lib/shapes/detect.ts + bench/judge.ts. Cells: percent, mean over prompts of the per-prompt mean over seeds, with a 95% percentile bootstrap interval over prompts (2000 resamples, seed 1). Δ: paired difference from base on the same prompts and seeds, with its interval. "n for 5 pts": prompts (× the seeds here) a 5-point paired difference needs at α = 0.05 and power 0.8, from the spread of this row\'s per-prompt differences.',
    "",
  ];
  for (const setting of Object.keys(data.cells)) {
    const metrics = metricsOf(setting);
    const nPrompts = items.filter((i) => i.setting === setting).length;
    lines.push(
      `## ${setting}`,
      "",
      `${nPrompts} prompts × ${config.seeds.length} seed(s).`,
      "",
      `| Method | images | ${metrics.map((m) => `${m.title} | Δ`).join(" | ")} | n for 5 pts (${
        metrics[0].key
      }) | s / image |`,
      `|---|---:|${metrics.map(() => "---:|---:").join("|")}|---:|---:|`,
    );
    for (const m of names) {
      const c = data.cells[setting][m];
      if (!c) continue;
      const err = data.errors[m] ? ` (${data.errors[m]} failed)` : "";
      lines.push(
        `| ${label.get(m)}${err} | ${data.images[setting][m]} | ${
          metrics.map((x) => `${fmtInterval(c[x.key].value)} | ${fmtInterval(c[x.key].diff, true)}`)
            .join(" | ")
        } | ${c[metrics[0].key].neededPrompts ?? "–"} | ${(data.latencyMs[m] / 1000).toFixed(2)} |`,
      );
    }
    const ks = [...new Set(items.filter((i) => i.setting === setting).map((i) => i.k))].sort((
      a,
      b,
    ) => a - b);
    lines.push(
      "",
      `By k (${metrics[0].title}, points):`,
      "",
      `| Method | ${ks.map((k) => `#${k}`).join(" | ")} |`,
      `|---|${ks.map(() => "---:").join("|")}|`,
    );
    for (const m of names) {
      const b = data.byK[setting][m];
      if (b) lines.push(`| ${label.get(m)} | ${ks.map((k) => pts(b[k])).join(" | ")} |`);
    }
    lines.push(
      "",
      "Failures per 100 requested objects (bench/judge.ts taxonomy), extras per image:",
      "",
      "| Method | wrong colour | wrong class | merged / malformed | missing | extra / image |",
      "|---|---:|---:|---:|---:|---:|",
    );
    for (const m of names) {
      const t = data.taxonomy[setting][m];
      if (!t) continue;
      lines.push(
        `| ${label.get(m)} | ${t.wrongColour.toFixed(1)} | ${t.wrongClass.toFixed(1)} | ${
          t.merged.toFixed(1)
        } | ${t.missing.toFixed(1)} | ${t.extraPerImage.toFixed(2)} |`,
      );
    }
    lines.push("");
  }
  lines.push(
    "## Methods",
    "",
    ...methods.map((m) => `- **${m.label}** (\`${m.name}\`): ${m.note}`),
    "",
  );
  lines.push("## Prompts", "", "| # | setting | k | prompt |", "|---:|---|---:|---|");
  for (const it of items) lines.push(`| ${it.id} | ${it.setting} | ${it.k} | ${it.prompt} |`);
  return { md: lines.join("\n") + "\n", data };
}

/**
 * Checks that shard configurations agree on what fixes the prompts, seeds and sampling (draw,
 * prompts, seeds, model, steps, guidance) and returns the first. Method options (η, variant, …)
 * may differ between files of different methods; {@link methodOptions} checks those per method.
 */
export function commonConfig(configs: readonly RunConfig[]): RunConfig {
  if (configs.length === 0) throw new AttnkitError("files", "no shard files");
  const key = (c: RunConfig) =>
    JSON.stringify({
      draw: c.draw,
      promptSeed: c.promptSeed,
      perSetting: c.perSetting,
      ks: c.ks,
      settings: c.settings,
      seeds: c.seeds,
      model: c.model,
      promptFile: c.promptFile,
      steps: c.options.steps,
      guidance: c.options.guidance,
    });
  const k0 = key(configs[0]);
  configs.forEach((c, i) => {
    if (key(c) !== k0) {
      throw new AttnkitError(
        `files[${i}]`,
        `its run configuration differs from the first file's: ${key(c)} vs ${k0}`,
      );
    }
  });
  return configs[0];
}

/** The options each method ran with; a method whose files disagree is an error. */
export function methodOptions(
  files: readonly { config: RunConfig; trials: readonly JudgedTrial[] }[],
): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  files.forEach((f, i) => {
    for (const m of new Set(f.trials.map((t) => t.method))) {
      const o = Object.fromEntries(Object.entries(f.config.options).sort());
      const prev = out.get(m);
      if (prev && JSON.stringify(prev) !== JSON.stringify(o)) {
        throw new AttnkitError(`files[${i}]`, `method ${m} ran with other options in another file`);
      }
      out.set(m, o);
    }
  });
  return out;
}

/** Unions shards' trials; the same (method, item, seed) twice is an error unless identical. */
export function mergeTrials(shards: readonly (readonly JudgedTrial[])[]): JudgedTrial[] {
  const seen = new Map<string, string>();
  const out: JudgedTrial[] = [];
  for (const s of shards) {
    for (const t of s) {
      const k = `${t.method}/${t.item}/${t.seed}`;
      const body = JSON.stringify(t);
      const prev = seen.get(k);
      if (prev !== undefined) {
        if (prev !== body) throw new AttnkitError("files", `two different results for ${k}`);
        continue;
      }
      seen.set(k, body);
      out.push(t);
    }
  }
  return out.sort((a, b) =>
    a.method < b.method ? -1 : a.method > b.method ? 1 : a.item - b.item || a.seed - b.seed
  );
}
