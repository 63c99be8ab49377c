/**
 * Quality of the embedded shapes model itself, for its model card, with the shapes detector as
 * the judge and fixed seeds:
 * (a) single-object prompts ("a photo of a red circle"), every class × colour (or, with
 *     `--quick`, a seeded sample): the class-and-colour correct rate (target ≥ 90 %);
 * (b) the base model's multi-class (k = 2..5) and multi-instance (n = 2..5) accuracy by k and n,
 *     on the accuracy benchmark's prompts (lib/shapes/benchmark_prompts.ts), as in the ISAC
 *     paper's tables;
 * (c) the wall time of one 50-step DDIM image with classifier-free guidance on onnxruntime-web
 *     wasm (median of a few).
 *
 *   deno run -A bench/model_quality.ts              # writes bench/results/model_quality.{md,json}
 *   deno run -A bench/model_quality.ts --quick      # a smoke run
 *   deno run -A bench/model_quality.ts --help
 *
 * Also writes a 4×4 sample sheet, `weights/shapes/samples.png`, from the images of (a) and (b).
 *
 * @module
 */
import { epArg, intArg, numArg, runCli } from "../lib/cli.ts";
import { parseArgs } from "node:util";
import { AttnkitError } from "../lib/errors.ts";
import { mulberry32, shuffled } from "../lib/random.ts";
import { captionOf } from "../lib/shapes/caption.ts";
import { CLASSES, type ColourName, COLOURS, type ShapeClass } from "../lib/shapes/world.ts";
import { benchmarkPrompts } from "../lib/shapes/benchmark_prompts.ts";
import { detect, type Instance } from "../lib/shapes/detect.ts";
import { MIN_CLS_SCORE, scoreGroups } from "../lib/shapes/score.ts";
import { tileGrid } from "../lib/shapes/grid.ts";
import { encodePng } from "../lib/png.ts";
import { drawText } from "../lib/viz/text.ts";
import {
  aggregate,
  type BenchItem,
  itemsFromBenchmark,
  judge,
  pct,
  settingAccuracy,
  settingTable,
  tileOf,
  type Trial,
} from "./accuracy.ts";

/** One single-object trial. */
export interface SingleTrial {
  cls: ShapeClass;
  colour: ColourName;
  seed: number;
  /** A recognised instance of the class in the colour was found. */
  correct: boolean;
  /** Exactly one recognised instance in all, and it is right. */
  exact: boolean;
  /** Class of the largest detected object (null: nothing found). */
  mainClass: ShapeClass | null;
  /** Colour of the largest detected object. */
  mainColour: ColourName | null;
  /** Number of detected objects. */
  objects: number;
}

/** Judges one single-object image's detections. */
export function judgeSingle(
  cls: ShapeClass,
  colour: ColourName,
  seed: number,
  found: readonly Pick<Instance, "cls" | "colour" | "clsScore" | "area">[],
): SingleTrial {
  const s = scoreGroups([{ cls, colour, count: 1 }], found);
  const main = [...found].sort((a, b) => b.area - a.area)[0];
  return {
    cls,
    colour,
    seed,
    correct: s.classAccuracy === 1,
    exact: s.exact && s.recognised === 1,
    mainClass: main?.cls ?? null,
    mainColour: main?.colour ?? null,
    objects: found.length,
  };
}

/** Summary of the single-object trials: overall and per class / colour. */
export interface SingleSummary {
  trials: number;
  correct: number;
  exact: number;
  /** Largest object has the right class (colour ignored). */
  classRate: number;
  /** Largest object has the right colour (class ignored). */
  colourRate: number;
  byClass: Record<string, { trials: number; correct: number; classRate: number }>;
  byColour: Record<string, { trials: number; correct: number; colourRate: number }>;
  /** (asked, largest object's class) pairs that were wrong, most frequent first. */
  confusions: { asked: ShapeClass; got: string; count: number }[];
}

/** Aggregates single-object trials. */
export function summariseSingles(ts: readonly SingleTrial[]): SingleSummary {
  const rate = (xs: readonly SingleTrial[], f: (t: SingleTrial) => boolean) =>
    xs.length ? xs.filter(f).length / xs.length : NaN;
  const byClass: SingleSummary["byClass"] = {};
  for (const c of CLASSES) {
    const xs = ts.filter((t) => t.cls === c);
    if (xs.length) {
      byClass[c] = {
        trials: xs.length,
        correct: rate(xs, (t) => t.correct),
        classRate: rate(xs, (t) => t.mainClass === t.cls),
      };
    }
  }
  const byColour: SingleSummary["byColour"] = {};
  for (const c of COLOURS) {
    const xs = ts.filter((t) => t.colour === c);
    if (xs.length) {
      byColour[c] = {
        trials: xs.length,
        correct: rate(xs, (t) => t.correct),
        colourRate: rate(xs, (t) => t.mainColour === t.colour),
      };
    }
  }
  const counts = new Map<string, number>();
  for (const t of ts) {
    if (t.mainClass === t.cls) continue;
    const key = `${t.cls}→${t.mainClass ?? "nothing"}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const confusions = [...counts.entries()]
    .map(([k, count]) => {
      const [asked, got] = k.split("→");
      return { asked: asked as ShapeClass, got, count };
    })
    .sort((a, b) => b.count - a.count);
  return {
    trials: ts.length,
    correct: rate(ts, (t) => t.correct),
    exact: rate(ts, (t) => t.exact),
    classRate: rate(ts, (t) => t.mainClass === t.cls),
    colourRate: rate(ts, (t) => t.mainColour === t.colour),
    byClass,
    byColour,
    confusions,
  };
}

/** Median of a non-empty list. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The single-object prompts: every (class, colour), or a seeded sample of `limit` of them. */
export function singlePrompts(
  limit: number | undefined,
  seed: number,
): { cls: ShapeClass; colour: ColourName }[] {
  const all = CLASSES.flatMap((cls) => COLOURS.map((colour) => ({ cls, colour })));
  if (limit === undefined || limit >= all.length) return all;
  return shuffled(mulberry32(seed), all).slice(0, limit);
}

const HELP = `bench/model_quality.ts — quality of the embedded shapes model (for its model card)

Usage: deno run -A bench/model_quality.ts [options]

Options:
  --seeds N          seeds per prompt: 0, 100, … (default 2; --quick 1)
  --steps N          sampler steps for (a) and (b): DDIM, or flow-matching Euler for a DiT
                     (default 25; --quick 10)
  --guidance X       classifier-free guidance (default 5)
  --per-setting N    (b): prompts per (setting, k) (default 5; --quick 1)
  --singles N        (a): a seeded sample of N class × colour prompts (default all 60; --quick 12)
  --timing-runs N    (c): 50-step images to time (default 3; --quick 1)
  --out DIR          output directory (default bench/results)
  --samples PATH     the 4×4 sample sheet (default weights/shapes/samples.png; "" skips it)
  --weights DIR      model directory (default weights/shapes)
  --ep EP            execution provider for (a) and (b): wasm (default), node, webgpu or auto;
                     (c) is always timed on wasm
  --quick            smoke run
  -h, --help         this text`;

/** Height of a sample-sheet tile: the image ×2 and three caption lines. */
const SHEET_TILE_H = 128 + 3 * 11;

/** A prompt without its articles, "a photo of" and "and": "blue oval, purple heart". */
export function shortCaption(prompt: string): string {
  return prompt.replace(/^a photo of /, "").replace(/\b(a|an) /g, "").replace(/ and /g, ", ");
}

/** A sample-sheet tile: the image ×2 over a three-line caption strip. */
function captionTile(image: Uint8Array, ok: number, caption: string): Uint8Array {
  const W = 128;
  const top = tileOf(image, ok);
  const words = shortCaption(caption).toUpperCase().split(/\s+/);
  const lines: string[] = [""];
  for (const w of words) {
    const last = lines[lines.length - 1];
    if ((last ? `${last} ${w}` : w).length <= 20) {
      lines[lines.length - 1] = last ? `${last} ${w}` : w;
    } else lines.push(w);
  }
  const out = new Uint8Array(W * SHEET_TILE_H * 3).fill(255);
  out.set(top, 0);
  lines.slice(0, 3).forEach((line, i) => {
    const strip = drawText(new Uint8Array(W * 11 * 3).fill(255), W, 11, line, 1);
    out.set(strip, (128 + i * 11) * W * 3);
  });
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      seeds: { type: "string" },
      steps: { type: "string" },
      guidance: { type: "string" },
      "per-setting": { type: "string" },
      singles: { type: "string" },
      "timing-runs": { type: "string" },
      out: { type: "string" },
      samples: { type: "string" },
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
  const seeds = Array.from(
    { length: intArg("seeds", values.seeds, quick ? 1 : 2, 1) },
    (_, j) => 100 * j,
  );
  const steps = intArg("steps", values.steps, quick ? 10 : 25, 1);
  const guidance = numArg("guidance", values.guidance, 5, { min: 1 });
  const perSetting = intArg("per-setting", values["per-setting"], quick ? 1 : 5, 1);
  const singlesLimit = values.singles === undefined
    ? (quick ? 12 : undefined)
    : intArg("singles", values.singles, 60, 1);
  const timingRuns = intArg("timing-runs", values["timing-runs"], quick ? 1 : 3, 0);
  const outDir = values.out ?? "bench/results";
  const samplesPath = values.samples ?? "weights/shapes/samples.png";
  const weights = values.weights ?? "weights/shapes";
  await Deno.mkdir(outDir, { recursive: true }).catch((e) => {
    throw new AttnkitError("--out", `cannot create ${outDir}: ${e.message}`);
  });

  const { loadShapesModel } = await import("../lib/models/shapes.ts");
  const { generate } = await import("../lib/runtime/sample.ts");
  const { imageBytes } = await import("../lib/viz/colour.ts");
  const config = JSON.parse(await Deno.readTextFile(`${weights}/config.json`));
  const ep = await epArg(values.ep ?? "wasm");
  const model = await loadShapesModel({ dir: weights, session: { executionProviders: [ep] } });
  // The model's default sampler: DDIM, or flow-matching Euler for a rectified-flow DiT.
  const samplerName = model.info.prediction === "flow"
    ? `flow-matching Euler (shift ${model.info.flowShift ?? 1})`
    : "DDIM";
  const image = async (prompt: string, seed: number, n = steps, m = model): Promise<Uint8Array> =>
    imageBytes(await generate(m, prompt, { seed, steps: n, guidance }), 0);
  const sheet: { image: Uint8Array; ok: number; caption: string; kind: string }[] = [];
  const log = (s: string) => {
    const el = (performance.now() - t0) / 1000;
    console.error(`[${Math.floor(el / 60)}:${String(Math.floor(el % 60)).padStart(2, "0")}] ${s}`);
  };

  // (a) single objects.
  const singles = singlePrompts(singlesLimit, 7);
  const singleTrials: SingleTrial[] = [];
  for (const [i, p] of singles.entries()) {
    const prompt = captionOf([{ cls: p.cls, colour: p.colour, count: 1 }]);
    for (const seed of seeds) {
      const rgb = await image(prompt, seed);
      const t = judgeSingle(p.cls, p.colour, seed, detect(rgb));
      singleTrials.push(t);
      if (seed === seeds[0]) {
        sheet.push({ image: rgb, ok: t.correct ? 1 : 0, caption: prompt, kind: "single" });
      }
      log(
        `(a) ${i + 1}/${singles.length} "${prompt}" seed ${seed}: ${t.correct ? "ok" : "WRONG"} ` +
          `(largest: ${t.mainColour ?? "-"} ${t.mainClass ?? "-"}, ${t.objects} object(s))`,
      );
    }
  }
  const single = summariseSingles(singleTrials);

  // (b) base multi-class / multi-instance accuracy.
  const items: BenchItem[] = itemsFromBenchmark(benchmarkPrompts({ seed: 2025, perSetting }));
  const trials: Trial[] = [];
  for (const it of items) {
    for (const seed of seeds) {
      const t1 = performance.now();
      const rgb = await image(it.prompt, seed);
      const ms = performance.now() - t1;
      const found = detect(rgb);
      const trial: Trial = {
        method: "base",
        item: it.id,
        seed,
        ...judge(it.groups, found),
        ms,
        detected: found.map((d) => ({ cls: d.cls, colour: d.colour, clsScore: d.clsScore })),
      };
      trials.push(trial);
      if (seed === seeds[0] && !sheet.some((s) => s.kind === `${it.setting}/${it.k}`)) {
        sheet.push({
          image: rgb,
          ok: settingAccuracy(it.setting, trial),
          caption: it.prompt,
          kind: `${it.setting}/${it.k}`,
        });
      }
      log(
        `(b) ${it.setting} k=${it.k} seed ${seed}: class ${pct(trial.classAccuracy)} ` +
          `inst ${pct(trial.instanceAccuracy)} "${it.prompt}"`,
      );
    }
  }
  const rows = aggregate(items, trials, [{ name: "base", label: `base (${steps} steps)` }]);

  // (c) timing of one 50-step guided image.
  const times: number[] = [];
  const wasmModel = ep === "wasm" || timingRuns === 0
    ? model
    : await loadShapesModel({ dir: weights, session: { executionProviders: ["wasm"] } });
  for (let r = 0; r < timingRuns; r++) {
    const t1 = performance.now();
    await image("a photo of three yellow hearts", 1000 + r, 50, wasmModel);
    times.push(performance.now() - t1);
    log(`(c) 50-step image ${r + 1}/${timingRuns}: ${(times[r] / 1000).toFixed(2)} s`);
  }
  const rssMb = Deno.memoryUsage().rss / 2 ** 20;

  // The 4×4 sample sheet: singles first (distinct classes), then one image per (setting, k).
  if (samplesPath) {
    const multi = sheet.filter((s) => s.kind !== "single");
    const distinct: typeof sheet = [];
    for (const s of sheet.filter((s) => s.kind === "single")) {
      if (!distinct.some((d) => d.caption.split(" ").pop() === s.caption.split(" ").pop())) {
        distinct.push(s);
      }
    }
    const picked = [...distinct.slice(0, Math.max(4, 16 - multi.length)), ...multi].slice(0, 16);
    if (picked.length > 0) {
      const tiles = picked.map((s) => captionTile(s.image, s.ok, s.caption));
      const grid = tileGrid(tiles, 128, SHEET_TILE_H, 4, 2, 255);
      await Deno.writeFile(samplesPath, await encodePng(grid.rgb, grid.width, grid.height));
    }
  }

  const totalMin = (performance.now() - t0) / 60000;
  const cmd = `deno run -A bench/model_quality.ts ${Deno.args.join(" ")}`.trim();
  const md = [
    "# Shapes model quality",
    "",
    `Generated by \`${cmd}\` on ${new Date().toISOString()}; total time ${
      totalMin.toFixed(1)
    } min.`,
    "",
    `- Model: ${config.name}, ${config.training?.steps ?? "?"} training steps (${weights}).`,
    `- Sampling for (a) and (b): ${samplerName} ${steps} steps, classifier-free guidance ${guidance}, ` +
    `execution provider ${ep}; seeds ` +
    `${seeds.join(", ")} per prompt. Judge: lib/shapes/detect.ts + score.ts (class fit ≥ ` +
    `${MIN_CLS_SCORE}).`,
    "",
    "## (a) Single objects",
    "",
    `${single.trials} images: ${singles.length} class × colour prompts ` +
    `(${singles.length === 60 ? "all of them" : "a seeded sample"}) × ${seeds.length} seed(s).`,
    "",
    "| measure | rate |",
    "|---|---:|",
    `| class and colour correct (an instance of the class in the colour; target ≥ 90%) | **${
      pct(single.correct)
    }** |`,
    `| exactly one object, and it is right | ${pct(single.exact)} |`,
    `| largest object's class right | ${pct(single.classRate)} |`,
    `| largest object's colour right | ${pct(single.colourRate)} |`,
    "",
    "| class | images | correct | class right |",
    "|---|---:|---:|---:|",
    ...Object.entries(single.byClass).map(([c, v]) =>
      `| ${c} | ${v.trials} | ${pct(v.correct)} | ${pct(v.classRate)} |`
    ),
    "",
    "| colour | images | correct | colour right |",
    "|---|---:|---:|---:|",
    ...Object.entries(single.byColour).map(([c, v]) =>
      `| ${c} | ${v.trials} | ${pct(v.correct)} | ${pct(v.colourRate)} |`
    ),
    "",
    `Most frequent class confusions (asked → largest object): ${
      single.confusions.slice(0, 8).map((c) => `${c.asked} → ${c.got} (${c.count})`).join(", ") ||
      "none"
    }.`,
    "",
    "## (b) Base model: multi-class and multi-instance accuracy",
    "",
    `Prompts: benchmarkPrompts({ seed: 2025, perSetting: ${perSetting} }) (the accuracy ` +
    `benchmark's draw), ${perSetting} prompt(s) × ${seeds.length} seed(s) per column.`,
    "",
    "### Multi-class (k classes from one category)",
    "",
    ...settingTable("multi-class", items, rows),
    "",
    "### Multi-instance (n of one class)",
    "",
    ...settingTable("multi-instance", items, rows),
    "",
    "## (c) Time of one image",
    "",
    timingRuns > 0
      ? `50-step ${samplerName} with classifier-free guidance ${guidance} (each step one denoiser call on a batch ` +
        `of 2), onnxruntime-web wasm, 1 thread: median **${
          (median(times) / 1000).toFixed(2)
        } s** ` +
        `over ${times.length} image(s) (${
          times.map((t) => (t / 1000).toFixed(2)).join(", ")
        } s); ` +
        `${(median(times) / 50).toFixed(0)} ms per step including text encoding and decoding. ` +
        `Process RSS at the end: ${rssMb.toFixed(0)} MB.`
      : "Not measured (--timing-runs 0).",
    "",
    samplesPath
      ? `Sample sheet: \`${samplesPath}\` (bar under each image: green = the fraction ` +
        "of the prompt the detector found)."
      : "",
    "",
  ].join("\n");
  await Deno.writeTextFile(`${outDir}/model_quality.md`, md);
  await Deno.writeTextFile(
    `${outDir}/model_quality.json`,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        command: cmd,
        model: { name: config.name, trainingSteps: config.training?.steps ?? null },
        steps,
        guidance,
        seeds,
        single,
        singleTrials,
        items,
        rows,
        trials,
        timing: { steps: 50, guidance, ms: times, medianMs: times.length ? median(times) : null },
        rssMb,
        totalMinutes: totalMin,
      },
      null,
      1,
    ) + "\n",
  );
  await model.release();
  if (wasmModel !== model) await wasmModel.release();
  console.log(md);
}

if (import.meta.main) await runCli(main);
