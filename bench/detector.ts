/**
 * The shapes detector's accuracy on held-out scenes, written to bench/results/detector.md.
 *
 *   deno run -A bench/detector.ts                 # 1200 scenes; AE round trip if weights exist
 *   deno run -A bench/detector.ts --help
 *
 * Scenes: half from the training mix (sample.ts) at seeds 1000+ (training uses seed 1), half
 * drawn for benchmark prompts (benchmark_prompts.ts, both settings, k = 2..5). Conditions:
 * - clean renders;
 * - damaged renders (detect_degrade.ts: blur, warp, colour cast, noise, speckles);
 * - AE round trip: each render encoded and decoded by the embedded model's autoencoder
 *   (weights/shapes/vae_encoder.onnx, vae_decoder.onnx), with and without noise on the latent.
 *   This is the ceiling for generated images: what the detector can still read after the decoder,
 *   however well the diffusion model places its objects.
 * Detections are matched to ground truth by mask IoU ≥ ½ against the render's label map.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { intArg, runCli } from "../lib/cli.ts";
import { mulberry32 } from "../lib/random.ts";
import { detect, type DetectOptions, type Instance } from "../lib/shapes/detect.ts";
import { degrade } from "../lib/shapes/detect_degrade.ts";
import {
  checkDetections,
  type DetectionCheck,
  type DetectorSummary,
  summarise,
} from "../lib/shapes/detect_eval.ts";
import { benchmarkPrompts } from "../lib/shapes/benchmark_prompts.ts";
import { render } from "../lib/shapes/render.ts";
import { sampleExample } from "../lib/shapes/sample.ts";
import { type Scene, sceneFor } from "../lib/shapes/scene.ts";
import { CLASSES, COLOURS } from "../lib/shapes/world.ts";
import { MIN_CLS_SCORE } from "../lib/shapes/score.ts";
import { createSession, ort, type Session } from "../lib/onnx/ort.ts";
import { encodePng } from "../lib/png.ts";
import { enlarge, tileGrid } from "../lib/shapes/grid.ts";

const HELP = `bench/detector.ts — accuracy of the shapes detector on held-out renders

Usage: deno run -A bench/detector.ts [options]

Options:
  --scenes N      scenes in all, half training mix and half benchmark prompts (default 1200)
  --ablation N    scenes for the mask-matching ablation (default 300)
  --ae N          scenes for the autoencoder round trip (default 400; 0 skips it)
  --weights DIR   directory with vae_encoder.onnx and vae_decoder.onnx (default weights/shapes)
  --out FILE      the report (default bench/results/detector.md)
  --png FILE      a picture of detections on some AE round trips (default out/detector.png)
  --help          this text
`;

interface Condition {
  name: string;
  scenes: number;
  summary: DetectorSummary;
  msPerScene: number;
  scores: { correct: number[]; wrong: number[]; unmatched: number[] };
}

function heldOutScenes(count: number): { scene: Scene; source: string }[] {
  const out: { scene: Scene; source: string }[] = [];
  for (let s = 0; out.length < Math.ceil(count / 2); s++) {
    out.push({ scene: sampleExample(mulberry32(1000 + s)).scene, source: "training mix" });
  }
  const per = Math.ceil((count - out.length) / 8);
  const rng = mulberry32(20_000);
  for (const p of benchmarkPrompts({ seed: 10_000, perSetting: per })) {
    const scene = sceneFor(rng, p.groups, COLOURS);
    if (scene && out.length < count) out.push({ scene, source: p.setting });
  }
  return out;
}

function run(
  name: string,
  scenes: readonly Scene[],
  image: (s: Scene, i: number, clean: Uint8Array) => Uint8Array,
  opts: DetectOptions = {},
): Condition {
  const checks: DetectionCheck[] = [];
  const scores = { correct: [] as number[], wrong: [] as number[], unmatched: [] as number[] };
  let ms = 0;
  scenes.forEach((sc, i) => {
    const r = render(sc);
    const img = image(sc, i, r.rgb);
    const t0 = performance.now();
    const found: Instance[] = detect(img, opts);
    ms += performance.now() - t0;
    const c = checkDetections(sc.objects, r.labels, found);
    checks.push(c);
    found.forEach((d, k) => {
      const m = c.matches.find((x) => x.instance === k);
      (m ? (m.clsOk ? scores.correct : scores.wrong) : scores.unmatched).push(d.clsScore);
    });
  });
  return {
    name,
    scenes: scenes.length,
    summary: summarise(checks),
    msPerScene: ms / scenes.length,
    scores,
  };
}

async function aeRoundTrip(
  dir: string,
  scenes: readonly Scene[],
  noise: number,
): Promise<Uint8Array[] | null> {
  let enc: Session, dec: Session;
  try {
    enc = await createSession(await Deno.readFile(`${dir}/vae_encoder.onnx`), {
      source: "vae_encoder.onnx",
    });
    dec = await createSession(await Deno.readFile(`${dir}/vae_decoder.onnx`), {
      source: "vae_decoder.onnx",
    });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  const rng = mulberry32(31_337);
  const out: Uint8Array[] = [];
  const batch = 25;
  for (let b = 0; b < scenes.length; b += batch) {
    const group = scenes.slice(b, b + batch);
    const x = new Float32Array(group.length * 3 * 64 * 64);
    group.forEach((sc, k) => {
      const rgb = render(sc).rgb;
      for (let i = 0; i < 64 * 64; i++) {
        for (let c = 0; c < 3; c++) x[((k * 3 + c) * 64 * 64) + i] = rgb[i * 3 + c] / 127.5 - 1;
      }
    });
    const z = (await enc.run({
      [enc.inputNames[0]]: new ort.Tensor("float32", x, [group.length, 3, 64, 64]),
    }))[
      enc.outputNames[0]
    ];
    const zd = Float32Array.from(z.data as Float32Array);
    if (noise > 0) {
      let m = 0, v = 0;
      for (const a of zd) m += a / zd.length;
      for (const a of zd) v += (a - m) ** 2 / zd.length;
      const sd = Math.sqrt(v);
      for (let i = 0; i < zd.length; i += 2) {
        // Box–Muller pairs from the seeded generator.
        const u = Math.max(rng(), 1e-12), w = rng();
        const r = Math.sqrt(-2 * Math.log(u));
        zd[i] += noise * sd * r * Math.cos(2 * Math.PI * w);
        if (i + 1 < zd.length) zd[i + 1] += noise * sd * r * Math.sin(2 * Math.PI * w);
      }
    }
    const y =
      (await dec.run({ [dec.inputNames[0]]: new ort.Tensor("float32", zd, z.dims as number[]) }))[
        dec.outputNames[0]
      ].data as Float32Array;
    group.forEach((_, k) => {
      const rgb = new Uint8Array(64 * 64 * 3);
      for (let i = 0; i < 64 * 64; i++) {
        for (let c = 0; c < 3; c++) {
          const v = (y[((k * 3 + c) * 64 * 64) + i] + 1) * 127.5;
          rgb[i * 3 + c] = Math.round(Math.min(255, Math.max(0, v)));
        }
      }
      out.push(rgb);
    });
  }
  return out;
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

function quantiles(xs: number[]): string {
  if (xs.length === 0) return "–";
  const s = [...xs].sort((a, b) => a - b);
  return [0.05, 0.5, 0.95].map((q) => s[Math.floor(q * (s.length - 1))].toFixed(2)).join(" / ");
}

function table(conds: readonly Condition[]): string {
  const head =
    "| condition | scenes | objects | count exact | recall | precision | class | colour | mask IoU | ms/scene |\n" +
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  return head + conds.map((c) => {
    const s = c.summary;
    return `| ${c.name} | ${c.scenes} | ${s.objects} | ${pct(s.countAccuracy)} | ${
      pct(s.recall)
    } | ` +
      `${pct(s.precision)} | ${pct(s.classAccuracy)} | ${pct(s.colourAccuracy)} | ${
        s.meanIou.toFixed(3)
      } | ` +
      `${c.msPerScene.toFixed(1)} |`;
  }).join("\n");
}

function confusion(c: Condition): string {
  const cols = [...CLASSES, "missed"] as const;
  const head = `| truth \\ found | ${cols.join(" | ")} |\n|---|${
    cols.map(() => "---:").join("|")
  }|\n`;
  return head +
    CLASSES.map((t) =>
      `| ${t} | ${cols.map((f) => c.summary.confusion[t][f] || "·").join(" | ")} |`
    ).join("\n");
}

function below(xs: readonly number[]): string {
  return xs.length === 0 ? "–" : pct(xs.filter((x) => x < MIN_CLS_SCORE).length / xs.length);
}

function scoreTable(conds: readonly Condition[]): string {
  return "| condition | correct class | wrong class | unmatched detections | " +
    `below ${MIN_CLS_SCORE}: correct / wrong / unmatched |\n|---|---|---|---|---|\n` +
    conds.map((c) =>
      `| ${c.name} | ${quantiles(c.scores.correct)} | ${quantiles(c.scores.wrong)} | ` +
      `${quantiles(c.scores.unmatched)} (n = ${c.scores.unmatched.length}) | ` +
      `${below(c.scores.correct)} / ${below(c.scores.wrong)} / ${below(c.scores.unmatched)} |`
    ).join("\n");
}

async function examplesPng(
  path: string,
  scenes: readonly Scene[],
  images: readonly Uint8Array[],
): Promise<void> {
  const tiles: Uint8Array[] = [];
  for (let i = 0; i < Math.min(8, images.length); i++) {
    const found = detect(images[i]);
    const boxed = images[i].slice();
    const mark = [0, 0, 0];
    for (const d of found) {
      const [x0, y0, x1, y1] = d.box;
      for (let x = x0; x < x1; x++) {
        for (const y of [y0, y1 - 1]) {
          for (let c = 0; c < 3; c++) boxed[(y * 64 + x) * 3 + c] = mark[c];
        }
      }
      for (let y = y0; y < y1; y++) {
        for (const x of [x0, x1 - 1]) {
          for (let c = 0; c < 3; c++) boxed[(y * 64 + x) * 3 + c] = mark[c];
        }
      }
    }
    tiles.push(enlarge(render(scenes[i]).rgb, 64, 64, 4), enlarge(boxed, 64, 64, 4));
    console.error(
      `example ${i}: truth ${
        scenes[i].objects.map((o) => `${o.colour} ${o.cls}`).join(", ")
      } | found ` +
        found.map((d) => `${d.colour} ${d.cls} (${d.clsScore.toFixed(2)})`).join(", "),
    );
  }
  const g = tileGrid(tiles, 256, 256, 4);
  await Deno.mkdir(path.replace(/\/[^/]*$/, ""), { recursive: true });
  await Deno.writeFile(path, await encodePng(g.rgb, g.width, g.height));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      scenes: { type: "string", default: "1200" },
      ablation: { type: "string", default: "300" },
      ae: { type: "string", default: "400" },
      weights: { type: "string", default: "weights/shapes" },
      out: { type: "string", default: "bench/results/detector.md" },
      png: { type: "string", default: "out/detector.png" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const count = intArg("scenes", values.scenes, 1200),
    ablation = intArg("ablation", values.ablation, 300),
    aeCount = intArg("ae", values.ae, 400);
  const held = heldOutScenes(count);
  const scenes = held.map((h) => h.scene);
  const clean = (_: Scene, __: number, rgb: Uint8Array) => rgb;
  const damaged = (_: Scene, i: number, rgb: Uint8Array) => degrade(rgb, mulberry32(50_000 + i));
  const conds: Condition[] = [];
  const log = (c: Condition) => {
    conds.push(c);
    console.error(
      `${c.name}: count ${pct(c.summary.countAccuracy)}, class ${pct(c.summary.classAccuracy)}`,
    );
  };
  log(run("clean renders", scenes, clean));
  for (const source of ["training mix", "multi-class", "multi-instance"]) {
    const sub = held.filter((h) => h.source === source).map((h) => h.scene);
    log(run(`clean renders: ${source} scenes`, sub, clean));
  }
  log(run("damaged renders", scenes, damaged));
  const ab = scenes.slice(0, ablation);
  if (ab.length > 0) {
    log(run("clean renders, mask matching (ablation)", ab, clean, { match: "mask" }));
    log(run("damaged renders, mask matching (ablation)", ab, damaged, { match: "mask" }));
    log(run("damaged renders, soft matching (same scenes)", ab, damaged));
  }
  const aeScenes = scenes.slice(0, aeCount);
  const aeConds: Condition[] = [];
  let aeNote = `AE round trip skipped (--ae 0).`;
  if (aeScenes.length > 0) {
    const plain = await aeRoundTrip(values.weights, aeScenes, 0);
    if (plain) {
      const noisy = (await aeRoundTrip(values.weights, aeScenes, 0.3))!;
      for (
        const [name, imgs] of [["AE round trip", plain], [
          "AE round trip, latent noise 0.3σ",
          noisy,
        ]] as const
      ) {
        const c = run(name, aeScenes, (_, i) => imgs[i]);
        log(c);
        aeConds.push(c);
      }
      await examplesPng(values.png, aeScenes, plain);
      aeNote = `Autoencoder from \`${values.weights}\`; a picture of detections on round trips: ` +
        `\`${values.png}\` (left: render, right: decoded with detected boxes).`;
    } else {
      aeNote =
        `AE round trip skipped: no vae_encoder.onnx / vae_decoder.onnx in \`${values.weights}\`.`;
    }
  }
  const clean0 = conds[0];
  const nMix = held.filter((h) => h.source === "training mix").length;
  const md = `# Shapes detector accuracy

Generated by \`deno run -A bench/detector.ts\` (${new Date().toISOString().slice(0, 10)}).
Held-out scenes: ${nMix} from the training mix at seeds 1000+ (training uses seed 1) and
${held.length - nMix} drawn for benchmark prompts (ISAC C.3 protocol, k = 2..5, prompt seed 10000).
A detection matches an object when their mask IoU (against the render's label map) is ≥ ½; class
and colour accuracy are over matched objects; "count exact" is the fraction of scenes with exactly
as many detections as objects. Detector defaults: α ≥ 0.5, 8-connected regions, minimum area
12 px, minimum 3 interior pixels, soft template matching, colour-drift merging. ms/scene is wall
time of \`detect\` on the machine that ran this (the first row includes building the template
cache), so it is only comparable within one run.

${table(conds)}

${aeNote}

The AE round trip is the ceiling for generated images: where the decoder itself turns one class
into another (its confusion table below), no detector reading the decoded image can undo it.

## Confusion on clean renders (${clean0.scenes} scenes)

${confusion(clean0)}
${
    aeConds.map((c) =>
      `\n## Confusion after the ${c.name} (${c.scenes} scenes)\n\n${confusion(c)}\n`
    ).join("")
  }
## Class fit (clsScore) of detections: 5% / 50% / 95% quantiles

Scoring (score.ts) ignores detections whose class fit is below \`minClsScore\` = ${MIN_CLS_SCORE}; the
last column shows what that threshold drops. Unmatched detections are mostly touching objects read
as one region.

${scoreTable(conds.filter((c) => !c.name.includes("ablation") && !c.name.includes("same scenes")))}
`;
  await Deno.mkdir(values.out.replace(/\/[^/]*$/, ""), { recursive: true });
  await Deno.writeTextFile(values.out, md);
  // The repository's `deno fmt --check` covers the report too: format it as written.
  await new Deno.Command(Deno.execPath(), { args: ["fmt", "-q", values.out] }).output();
  console.log(md);
}

if (import.meta.main) await runCli(main);
