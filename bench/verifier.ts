/**
 * Verifier diagnostics (issue 11): can ISAC's objective tell a good image from a bad one?
 *
 *   deno run -A bench/verifier.ts record --draw validation --per-setting 13 --seeds 1 --ep node
 *   deno run -A bench/verifier.ts analyse bench/results/verifier/*.jsonl
 *
 * `record` samples every (prompt, seed) of a draw as `--candidates` base samples (seeds seed …
 * seed + N − 1, batched exactly as ISAC selection batches them), and at every step records, for
 * every named variant of the objective (lib/isac/variant.ts), the unweighted L_ins and L_cls of
 * each candidate, then judges each decoded image with the detector (bench/judge.ts). One JSON line
 * per (prompt, seed); a run is resumable (lines already written are skipped) and splits with
 * `--shard i/n`.
 *
 * `analyse` reads the lines and reports, per variant and schedule: the ROC-AUC of −ΣL_t for "the
 * detector finds the prompt" (class only; exact with colours), pooled over all samples and within
 * each selection group (the candidates of one prompt and seed, which is what best-of-N uses), the
 * same for L_ins and L_cls alone and per phase (first and second half of the steps), each with a
 * 95% bootstrap interval over prompts; and the accuracy best-of-N selection would reach with that
 * score, paired against candidate 0 (the base sample). Pure analysis functions are exported.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { epArg, intArg, runCli } from "../lib/cli.ts";
import { AttnkitError } from "../lib/errors.ts";
import { benchmarkPrompts } from "../lib/shapes/benchmark_prompts.ts";
import { ISAC_VARIANTS } from "../lib/isac/variant.ts";
import { rocAuc, withinGroupAuc } from "../lib/stats/auc.ts";
import { bootstrapCi, type Interval, mean } from "../lib/stats/bootstrap.ts";
import { judgeImage, type Judgement } from "./judge.ts";
import { drawSeed, parseShard } from "./accuracy_core.ts";
import type { JudgedTrial, RunConfig } from "./accuracy_report.ts";
import { itemsFromBenchmark } from "./accuracy.ts";

/** One candidate of one (prompt, seed): per-step terms per variant, and its judgement. */
export interface VerifierCandidate {
  /** Candidate index (its noise seed is seed + index). */
  index: number;
  /** variant → { ins: L_ins per step, cls: L_cls per step } (unweighted). */
  terms: Record<string, { ins: number[]; cls: number[] }>;
  /** The detector's judgement. */
  judgement: Judgement;
}

/** One JSON line of a record run. */
export interface VerifierRecord {
  item: number;
  setting: string;
  k: number;
  prompt: string;
  seed: number;
  /** Wall time of the batched run, its scoring and decoding, ms (absent in early records). */
  ms?: number;
  /** Timestep of each step and the training horizon. */
  timesteps: number[];
  trainSteps: number;
  candidates: VerifierCandidate[];
}

/** A schedule by name, as weights per step: Table 2's letters. */
export const SCHEDULES: Readonly<Record<string, (t: number, T: number) => [number, number]>> = {
  "G soft (ins→cls)": (t, T) => [t / T, 1 - t / T],
  "E reverse soft (cls→ins)": (t, T) => [1 - t / T, t / T],
  "F hard (ins→cls)": (t, T) => (t > T / 2 ? [1, 0] : [0, 1]),
  "D reverse hard": (t, T) => (t > T / 2 ? [0, 1] : [1, 0]),
  "C fixed ½": () => [0.5, 0.5],
  "A L_ins only": () => [1, 0],
  "B L_cls only": () => [0, 1],
};

/** The score whose AUC is measured: −Σ_t over the chosen steps of w_ins·L_ins + w_cls·L_cls. */
export function candidateScore(
  rec: VerifierRecord,
  c: VerifierCandidate,
  variant: string,
  schedule: string,
  phase: "all" | "early" | "late" = "all",
): number {
  const t = c.terms[variant];
  const w = SCHEDULES[schedule];
  const half = Math.floor(rec.timesteps.length / 2);
  let s = 0;
  rec.timesteps.forEach((ts, i) => {
    if (phase === "early" && i >= half) return;
    if (phase === "late" && i < half) return;
    const [a, b] = w(ts, rec.trainSteps);
    s += a * t.ins[i] + b * t.cls[i];
  });
  return -s;
}

/** A label of the diagnostics. */
export type Label = "found" | "exact";

function labelOf(c: VerifierCandidate, label: Label): boolean {
  return label === "found" ? c.judgement.imageClassOnly : c.judgement.exact;
}

/** Pooled and within-group AUC of a score with intervals (bootstrap over prompts). */
export function aucOf(
  records: readonly VerifierRecord[],
  score: (r: VerifierRecord, c: VerifierCandidate) => number,
  label: Label,
): {
  pooled: Interval;
  stratified: Interval;
  within: Interval;
  positives: number;
  samples: number;
} {
  const byItem = new Map<
    number,
    { score: number; label: boolean; group: number; stratum: string }[]
  >();
  records.forEach((r, gi) => {
    const list = byItem.get(r.item) ?? [];
    for (const c of r.candidates) {
      list.push({
        score: score(r, c),
        label: labelOf(c, label),
        group: gi,
        stratum: `${r.setting}/${r.k}`,
      });
    }
    byItem.set(r.item, list);
  });
  const clusters = [...byItem.values()];
  const pooledStat = (cs: readonly typeof clusters[number][]) => {
    const all = cs.flat();
    return rocAuc(all.map((x) => x.score), all.map((x) => x.label));
  };
  const withinStat = (cs: readonly typeof clusters[number][]) => {
    const groups: { score: number; label: boolean }[][] = [];
    for (const c of cs) {
      const by = new Map<number, { score: number; label: boolean }[]>();
      for (const x of c) by.set(x.group, [...(by.get(x.group) ?? []), x]);
      groups.push(...by.values());
    }
    return withinGroupAuc(groups);
  };
  // Pairs within one (setting, k) only: removes the confound that prompts with fewer objects
  // both score lower losses (fewer pairs to take a max over) and succeed more often.
  const stratifiedStat = (cs: readonly typeof clusters[number][]) => {
    const by = new Map<string, { score: number; label: boolean }[]>();
    for (const x of cs.flat()) by.set(x.stratum, [...(by.get(x.stratum) ?? []), x]);
    return withinGroupAuc([...by.values()]);
  };
  const all = clusters.flat();
  return {
    stratified: bootstrapCi(clusters, stratifiedStat, { reps: 1000 }),
    pooled: bootstrapCi(clusters, pooledStat, { reps: 1000 }),
    within: bootstrapCi(clusters, withinStat, { reps: 1000 }),
    positives: all.filter((x) => x.label).length,
    samples: all.length,
  };
}

/** Best-of-N selection by a score, against candidate 0, on one metric: per-prompt paired means. */
export function selectionGain(
  records: readonly VerifierRecord[],
  score: (r: VerifierRecord, c: VerifierCandidate) => number,
  metric: (j: Judgement) => number,
): { base: Interval; picked: Interval; diff: Interval; oracle: Interval } {
  const byItem = new Map<number, { base: number; picked: number; oracle: number }[]>();
  for (const r of records) {
    const scores = r.candidates.map((c) => score(r, c));
    let best = 0;
    for (let i = 1; i < scores.length; i++) if (scores[i] > scores[best]) best = i;
    const vals = r.candidates.map((c) => metric(c.judgement));
    const list = byItem.get(r.item) ?? [];
    list.push({ base: vals[0], picked: vals[best], oracle: Math.max(...vals) });
    byItem.set(r.item, list);
  }
  const per = [...byItem.values()].map((l) => ({
    base: mean(l.map((x) => x.base)),
    picked: mean(l.map((x) => x.picked)),
    oracle: mean(l.map((x) => x.oracle)),
  }));
  const ci = (f: (x: typeof per[number]) => number) =>
    bootstrapCi(per, (s) => mean(s.map(f)), { reps: 1000 });
  return {
    base: ci((x) => x.base),
    picked: ci((x) => x.picked),
    diff: ci((x) => x.picked - x.base),
    oracle: ci((x) => x.oracle),
  };
}

function fmtCi(i: Interval, digits = 2): string {
  if (!Number.isFinite(i.value)) return "–";
  return `${i.value.toFixed(digits)} [${i.lo.toFixed(digits)}, ${i.hi.toFixed(digits)}]`;
}

function fmtPts(i: Interval): string {
  const p = (x: number) => (100 * x).toFixed(1);
  return `${p(i.value)} [${p(i.lo)}, ${p(i.hi)}]`;
}

/** The analysis report as markdown (and the numbers as JSON). */
export function analyse(
  records: readonly VerifierRecord[],
  source: string,
): { md: string; json: unknown } {
  const variants = Object.keys(records[0]?.candidates[0]?.terms ?? {});
  const settings = ["all", "multi-class", "multi-instance"] as const;
  const subset = (s: typeof settings[number]) =>
    s === "all" ? records : records.filter((r) => r.setting === s);
  const lines: string[] = [
    "# Verifier diagnostics: does ISAC's objective recognise a good image?",
    "",
    `Source: ${source}. ${records.length} (prompt, seed) groups, ${
      records.reduce((s, r) => s + r.candidates.length, 0)
    } base samples (${
      records[0]?.candidates.length ?? 0
    } candidates per group, batched as ISAC selection batches them), ${
      new Set(records.map((r) => r.item)).size
    } prompts.`,
    "",
    "Labels, from the detector (bench/judge.ts): **found** = every requested class present with its count reached, colour ignored; **exact** = every (class, colour) target with exactly its count and no extra instance of a target class (bench/judge.ts `exact`). " +
    "Score = −Σ_t (λ_ins(t)·L_ins + λ_cls(t)·L_cls) over the steps. **Pooled AUC**: over all samples. **Within-k AUC**: over (positive, negative) pairs of the same setting and k (prompts with fewer objects have fewer pairs to take Eq. 8-9's max over and succeed more often, which inflates the pooled AUC). **Within-group AUC**: over (positive, negative) pairs of the same selection group, which is all best-of-N selection can use. Intervals: 95% percentile bootstrap over prompts (1000 resamples). 0.5 = no information.",
    "",
  ];
  const json: Record<string, unknown> = {};
  // Summary: the numbers a choice of variant rests on, one line per variant (schedule G, the
  // paper's soft instance-to-semantic one, and E, its reverse).
  lines.push(
    "## Summary (label: found; score −ΣL_t)",
    "",
    "| Variant | schedule | AUC multi-class pooled | within-k | within-group | AUC multi-instance pooled | within-k | within-group | selection Δ multi-class (pts) | selection Δ multi-instance (pts) |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  );
  for (const v of variants) {
    for (const sch of ["G soft (ins→cls)", "E reverse soft (cls→ins)"]) {
      const f = (r: VerifierRecord, c: VerifierCandidate) => candidateScore(r, c, v, sch);
      const mc = subset("multi-class");
      const mi = subset("multi-instance");
      const a = mc.length ? aucOf(mc, f, "found") : undefined;
      const b = mi.length ? aucOf(mi, f, "found") : undefined;
      const ga = mc.length ? selectionGain(mc, f, (j) => j.classOnly) : undefined;
      const gb = mi.length ? selectionGain(mi, f, (j) => j.instanceCapped) : undefined;
      lines.push(
        `| ${v} | ${sch} | ${a ? fmtCi(a.pooled) : "–"} | ${a ? fmtCi(a.stratified) : "–"} | ${
          a ? fmtCi(a.within) : "–"
        } | ${b ? fmtCi(b.pooled) : "–"} | ${b ? fmtCi(b.stratified) : "–"} | ${
          b ? fmtCi(b.within) : "–"
        } | ${ga ? fmtPts(ga.diff) : "–"} | ${gb ? fmtPts(gb.diff) : "–"} |`,
      );
    }
  }
  lines.push("");
  for (const s of settings) {
    const recs = subset(s);
    if (recs.length === 0) continue;
    lines.push(`## ${s === "all" ? "Both settings" : s}`, "");
    for (const label of ["found", "exact"] as const) {
      const pos = recs.flatMap((r) => r.candidates).filter((c) => labelOf(c, label)).length;
      const tot = recs.flatMap((r) => r.candidates).length;
      lines.push(
        `### Label: ${label} (${pos} of ${tot} samples positive)`,
        "",
        "| Variant | Score | Pooled AUC | Within-k AUC | Within-group AUC |",
        "|---|---|---:|---:|---:|",
      );
      for (const v of variants) {
        const rows: [string, (r: VerifierRecord, c: VerifierCandidate) => number][] = [
          ["−ΣL_t, G soft", (r, c) => candidateScore(r, c, v, "G soft (ins→cls)")],
          ["−ΣL_t, E reverse soft", (r, c) => candidateScore(r, c, v, "E reverse soft (cls→ins)")],
          ["−ΣL_ins", (r, c) => candidateScore(r, c, v, "A L_ins only")],
          ["−ΣL_cls", (r, c) => candidateScore(r, c, v, "B L_cls only")],
          ["−ΣL_t G, first half", (r, c) => candidateScore(r, c, v, "G soft (ins→cls)", "early")],
          ["−ΣL_t G, second half", (r, c) => candidateScore(r, c, v, "G soft (ins→cls)", "late")],
          ["−ΣL_cls, second half", (r, c) => candidateScore(r, c, v, "B L_cls only", "late")],
        ];
        for (const [name, f] of rows) {
          const a = aucOf(recs, f, label);
          json[`${s}/${label}/${v}/${name}`] = a;
          lines.push(
            `| ${v} | ${name} | ${fmtCi(a.pooled)} | ${fmtCi(a.stratified)} | ${fmtCi(a.within)} |`,
          );
        }
      }
      lines.push("");
    }
    lines.push(
      `### Best-of-${
        records[0].candidates.length
      } selection by the score (validation), paired against candidate 0 (base)`,
      "",
      "Points (percent) with 95% intervals. Metric: class-only accuracy for multi-class, capped multi-instance accuracy for multi-instance (the paper's). Oracle: the best candidate by the detector (the ceiling of selection).",
      "",
      "| Variant | Schedule | base | selected | selected − base | oracle |",
      "|---|---|---:|---:|---:|---:|",
    );
    const metric = (r: VerifierRecord) => (j: Judgement) =>
      r.setting === "multi-instance" ? j.instanceCapped : j.classOnly;
    for (const v of variants) {
      for (const sch of Object.keys(SCHEDULES)) {
        // Metric depends on the record's setting: fold it into a per-record closure.
        const g = selectionGainMixed(recs, (r, c) => candidateScore(r, c, v, sch), metric);
        json[`${s}/select/${v}/${sch}`] = g;
        lines.push(
          `| ${v} | ${sch} | ${fmtPts(g.base)} | ${fmtPts(g.picked)} | ${fmtPts(g.diff)} | ${
            fmtPts(g.oracle)
          } |`,
        );
      }
    }
    lines.push("");
  }
  return { md: lines.join("\n") + "\n", json };
}

/** {@link selectionGain} with a metric chosen per record (the setting decides it). */
function selectionGainMixed(
  records: readonly VerifierRecord[],
  score: (r: VerifierRecord, c: VerifierCandidate) => number,
  metric: (r: VerifierRecord) => (j: Judgement) => number,
) {
  const tagged = records.map((r) => ({
    ...r,
    candidates: r.candidates.map((c) => ({
      ...c,
      judgement: { ...c.judgement, classOnly: metric(r)(c.judgement) },
    })),
  }));
  return selectionGain(tagged, score, (j) => j.classOnly);
}

async function readRecords(paths: readonly string[]): Promise<VerifierRecord[]> {
  const out = new Map<string, VerifierRecord>();
  for (const p of paths) {
    const text = await Deno.readTextFile(p).catch((e) => {
      throw new AttnkitError("files", `cannot read ${p}: ${e.message}`);
    });
    for (const line of text.split("\n")) {
      if (!line.trim()) continue;
      const r = JSON.parse(line) as VerifierRecord;
      out.set(`${r.item}/${r.seed}`, r);
    }
  }
  return [...out.values()].sort((a, b) => a.item - b.item || a.seed - b.seed);
}

/** Table 2 letters → the schedule names of {@link SCHEDULES}. */
const LETTERS: Readonly<Record<string, string>> = {
  A: "A L_ins only",
  B: "B L_cls only",
  C: "C fixed ½",
  D: "D reverse hard",
  E: "E reverse soft (cls→ins)",
  F: "F hard (ins→cls)",
  G: "G soft (ins→cls)",
};

/**
 * Best-of-N selection from records, as benchmark trials: for each record the candidate with the
 * lowest Σ_t L_t under `variant` (a recorded term key) and `schedule`. The picks are exactly what
 * `selectLatent` with that variant and schedule would pick from the same batched candidates.
 */
export function selectionTrials(
  records: readonly VerifierRecord[],
  method: string,
  variant: string,
  schedule: string,
): JudgedTrial[] {
  return records.map((r) => {
    let best = 0;
    const scores = r.candidates.map((c) => candidateScore(r, c, variant, schedule));
    for (let i = 1; i < scores.length; i++) if (scores[i] > scores[best]) best = i;
    return {
      method,
      item: r.item,
      seed: r.seed,
      ms: r.ms ?? 0,
      judgement: r.candidates[best].judgement,
      note: `picked candidate ${best}`,
    };
  });
}

async function trialsCmd(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      draw: { type: "string" },
      "per-setting": { type: "string" },
      variant: { type: "string" },
      schedule: { type: "string" },
      out: { type: "string" },
      weights: { type: "string" },
    },
  });
  const records = await readRecords(positionals);
  if (records.length === 0) throw new AttnkitError("files", "no records in the files");
  const draw = values.draw ?? "test";
  const variant = values.variant ?? "attnkit-0.1";
  const letter = values.schedule ?? "G";
  if (!LETTERS[letter]) throw new AttnkitError("--schedule", `expected A … G, got "${letter}"`);
  if (!records[0].candidates[0].terms[variant]) {
    throw new AttnkitError("--variant", `"${variant}" was not recorded in these files`);
  }
  const weights = values.weights ?? "weights/shapes";
  const mc = JSON.parse(await Deno.readTextFile(`${weights}/config.json`));
  const config: RunConfig = {
    draw,
    promptSeed: drawSeed(draw),
    perSetting: intArg("per-setting", values["per-setting"], 32, 1),
    ks: [2, 3, 4, 5],
    settings: ["multi-class", "multi-instance"],
    seeds: [...new Set(records.map((r) => r.seed))].sort((a, b) => a - b),
    options: {
      steps: records[0].timesteps.length,
      guidance: 5,
      candidates: records[0].candidates.length,
      isacVariant: variant,
      ablationForm: "select",
      command: `deno run -A bench/verifier.ts record --draw ${draw} …; bench/verifier.ts trials ` +
        `--variant ${variant} --schedule ${letter}`,
    },
    model: `${mc.name} (${mc.training?.steps ?? "?"} training steps)`,
  };
  const trials: JudgedTrial[] = [
    ...selectionTrials(records, "isac-sel", variant, LETTERS[letter]),
    ...Object.entries(LETTERS).map(([l, name]) =>
      selectionTrials(records, `isac-${l}`, variant, name)
    ).flat(),
    ...(["iou", "kl", "mae"] as const).flatMap((m) =>
      records[0].candidates[0].terms[`${variant}/${m}`]
        ? selectionTrials(records, `isac-${m}`, `${variant}/${m}`, LETTERS.G)
        : []
    ),
  ];
  const out = values.out ?? `bench/results/accuracy/${draw}.selection.${variant}.jsonl`;
  await Deno.writeTextFile(
    out,
    [JSON.stringify({ config }), ...trials.map((t) => JSON.stringify(t))].join("\n") + "\n",
  );
  console.error(`wrote ${trials.length} trials to ${out}`);
}

const HELP = `bench/verifier.ts — verifier diagnostics of ISAC's objective

  record  [--draw validation|test] [--per-setting N] [--seeds N] [--candidates N] [--steps N]
          [--variants a,b] [--shard i/n] [--out FILE.jsonl] [--ep EP]
  analyse FILE.jsonl … [--out DIR] [--name N]   writes DIR/N.md and DIR/N.json (N: verifier)
  trials FILE.jsonl … [--draw D] [--per-setting N] [--variant V] [--schedule A…G] [--out FILE]
          best-of-N selection by the recorded terms as bench/accuracy.ts trials (isac-sel with
          the variant and schedule, isac-A … isac-G, isac-iou/kl/mae), for its merge`;

async function record(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      draw: { type: "string" },
      "per-setting": { type: "string" },
      seeds: { type: "string" },
      candidates: { type: "string" },
      steps: { type: "string" },
      guidance: { type: "string" },
      variants: { type: "string" },
      metrics: { type: "string" },
      shard: { type: "string" },
      out: { type: "string" },
      ep: { type: "string" },
      weights: { type: "string" },
    },
  });
  const draw = values.draw ?? "validation";
  const promptSeed = drawSeed(draw);
  if (draw === "test") console.error("verifier on the TEST draw: use only for a final report");
  const perSetting = intArg("per-setting", values["per-setting"], 13, 1);
  const nSeeds = intArg("seeds", values.seeds, 1, 1);
  const n = intArg("candidates", values.candidates, 4, 1);
  const steps = intArg("steps", values.steps, 25, 1);
  const guidance = Number(values.guidance ?? 5);
  const variants = (values.variants ?? Object.keys(ISAC_VARIANTS).join(",")).split(",");
  for (const v of variants) {
    if (!ISAC_VARIANTS[v]) throw new AttnkitError("--variants", `unknown variant "${v}"`);
  }
  // Table 3: further similarity metrics for the first variant, recorded as "<variant>/<metric>".
  const metrics = values.metrics ? values.metrics.split(",") : [];
  for (const m of metrics) {
    if (!["iou", "kl", "mae"].includes(m)) {
      throw new AttnkitError("--metrics", `expected iou, kl or mae, got "${m}"`);
    }
  }
  const keys: { key: string; variant: string; metric?: "iou" | "kl" | "mae" }[] = [
    ...variants.map((v) => ({ key: v, variant: v })),
    ...metrics.map((m) => ({
      key: `${variants[0]}/${m}`,
      variant: variants[0],
      metric: m as "iou" | "kl" | "mae",
    })),
  ];
  const shard = parseShard(values.shard);
  const out = values.out ??
    `bench/results/verifier/${draw}.shard-${shard.index}-of-${shard.count}.jsonl`;
  await Deno.mkdir(out.replace(/\/[^/]*$/, ""), { recursive: true });
  const items = itemsFromBenchmark(benchmarkPrompts({ seed: promptSeed, perSetting }));
  const done = new Set(
    (await readRecords([out]).catch(() => [])).map((r) => `${r.item}/${r.seed}`),
  );
  const { loadShapesModel } = await import("../lib/models/shapes.ts");
  const { sampleLatents, decodeLatents } = await import("../lib/runtime/sample.ts");
  const { accumulateMaps } = await import("../lib/attention/accumulate.ts");
  const { isacLoss } = await import("../lib/isac/loss.ts");
  const { isacSpecFor } = await import("../lib/control/isac_spec.ts");
  const { imageBytes } = await import("../lib/viz/colour.ts");
  const { tensor } = await import("../lib/tensor.ts");
  const { detect } = await import("../lib/shapes/detect.ts");
  const weights = values.weights ?? "weights/shapes";
  const ep = await epArg(values.ep ?? "node");
  const model = await loadShapesModel({ dir: weights, session: { executionProviders: [ep] } });
  const units = items.flatMap((it) =>
    Array.from({ length: nSeeds }, (_, j) => ({ it, seed: 1000 * j }))
  ).filter((_, u) => u % shard.count === shard.index);
  const t0 = performance.now();
  let count = 0;
  for (const { it, seed } of units) {
    if (done.has(`${it.id}/${seed}`)) continue;
    const spec = isacSpecFor(model, it.prompt).isac;
    const terms: Record<string, { ins: number[]; cls: number[] }>[] = Array.from(
      { length: n },
      () => Object.fromEntries(keys.map((k) => [k.key, { ins: [], cls: [] }])),
    );
    const timesteps: number[] = [];
    let trainSteps = 1000;
    const tRun = performance.now();
    const latents = await sampleLatents(model, it.prompt, {
      seed,
      steps,
      guidance,
      candidates: n,
      taps: true,
      label: `verifier ×${n}`,
      onStep(e) {
        timesteps.push(e.timestep);
        trainSteps = e.trainSteps;
        e.taps!.forEach((taps, i) => {
          const maps = accumulateMaps(taps);
          for (const k of keys) {
            let r = { ins: NaN, cls: NaN };
            try {
              r = isacLoss(
                maps,
                {
                  ...spec,
                  variant: ISAC_VARIANTS[k.variant],
                  ...(k.metric ? { metric: k.metric } : {}),
                },
                { ins: 0, cls: 0 },
              );
            } catch (err) {
              if (!(err instanceof AttnkitError)) throw err;
            }
            terms[i][k.key].ins.push(r.ins);
            terms[i][k.key].cls.push(r.cls);
          }
        });
      },
    });
    const per = latents.data.length / n;
    const candidates: VerifierCandidate[] = [];
    for (let i = 0; i < n; i++) {
      const one = tensor(
        [1, ...latents.shape.slice(1)],
        latents.data.slice(i * per, (i + 1) * per),
      );
      const image = imageBytes(await decodeLatents(model, one), 0);
      candidates.push({
        index: i,
        terms: terms[i],
        judgement: judgeImage(it.groups, detect(image)),
      });
    }
    const rec: VerifierRecord = {
      ms: Math.round(performance.now() - tRun),
      item: it.id,
      setting: it.setting,
      k: it.k,
      prompt: it.prompt,
      seed,
      timesteps,
      trainSteps,
      candidates,
    };
    await Deno.writeTextFile(out, JSON.stringify(rec) + "\n", { append: true });
    count++;
    const el = (performance.now() - t0) / 1000;
    console.error(
      `[${count}/${units.length - done.size} ${
        el.toFixed(0)
      } s] ${it.setting} k=${it.k} seed ${seed}: found ${
        candidates.map((c) => (c.judgement.imageClassOnly ? 1 : 0)).join("")
      }`,
    );
  }
  await model.release();
}

async function analyseCmd(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { out: { type: "string" }, name: { type: "string" } },
  });
  if (positionals.length === 0) throw new AttnkitError("files", "expected record files (.jsonl)");
  const records = await readRecords(positionals);
  if (records.length === 0) throw new AttnkitError("files", "no records in the files");
  const outDir = values.out ?? "bench/results";
  const { md, json } = analyse(
    records,
    `\`deno run -A bench/verifier.ts analyse ${positionals.join(" ")}\``,
  );
  const name = values.name ?? "verifier";
  await Deno.writeTextFile(`${outDir}/${name}.md`, md);
  await Deno.writeTextFile(`${outDir}/${name}.json`, JSON.stringify(json, null, 1) + "\n");
  console.log(md);
}

async function main(): Promise<void> {
  const [cmd, ...rest] = Deno.args;
  if (cmd === "record") return await record(rest);
  if (cmd === "analyse") return await analyseCmd(rest);
  if (cmd === "trials") return await trialsCmd(rest);
  console.log(HELP);
  if (cmd !== "-h" && cmd !== "--help") {
    throw new AttnkitError("command", `expected record or analyse, got ${JSON.stringify(cmd)}`);
  }
}

if (import.meta.main) await runCli(main);
