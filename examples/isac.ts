/**
 * ISAC on the embedded shapes model, end to end: for each seed, the base sampler and ISAC side by
 * side, with the instance clusters ISAC found and the per-class cross-attention maps beside
 * each image, written as one PNG. Every row it ran is shown (rows use consecutive seeds, none
 * picked), and the shapes detector's verdict on each image is printed and drawn on its tile, so
 * the picture cannot claim more than the detector sees. Measured effects, with intervals, are in
 * bench/results/accuracy_test.md.
 *
 *   deno run -A examples/isac.ts                      # defaults: writes out/isac.png
 *   deno run -A examples/isac.ts --help
 *
 * @module
 */
import { epArg, intArg, numArg, prepareOutput, runCli } from "../lib/cli.ts";
import { parseArgs } from "node:util";
import { loadShapesModel } from "../lib/models/shapes.ts";
import { selectLatent, type Snapshot } from "../lib/control/select_latent.ts";
import { decodeLatents } from "../lib/runtime/sample.ts";
import { AttnkitError } from "../lib/errors.ts";
import { clusterImage, heatmap, imageBytes, resizeNearest } from "../lib/viz/colour.ts";
import { tileGrid } from "../lib/shapes/grid.ts";
import { encodePng } from "../lib/png.ts";
import { drawText } from "../lib/viz/text.ts";
import { verdictOf } from "../lib/shapes/verdict.ts";
import { isacVariant } from "../lib/isac/variant.ts";
import { isacSpecFor } from "../lib/control/isac_spec.ts";

/** A multi-class prompt: the setting where the base model fails most (bench/results). */
const DEFAULT_PROMPT = "a photo of a red heart, a blue star and a green circle";
/** The objective variant chosen on the validation draw (bench/results/verifier.md). */
const DEFAULT_VARIANT = "attnkit-0.1";

const HELP = `examples/isac.ts — ISAC (instance-to-semantic attention control) on the embedded model

Usage: deno run -A examples/isac.ts [options]

Options:
  --prompt TEXT      prompt (default "${DEFAULT_PROMPT}")
  --seed N           first seed (a safe integer, default 0; negative as --seed=-5); row r
                     uses seeds seed + r·candidates …
  --rows N           how many seeds to compare (default 3)
  --candidates N     ISAC latent-selection candidates per row (default 4)
  --steps N          sampler steps (default 25, as the benchmark): DDIM, or flow-matching
                     Euler for a DiT
  --guidance X       classifier-free guidance scale (default 5)
  --method M         select (ISAC Algorithm 2, default) | optimise (Algorithm 1)
  --eta X            optimise: learning rate η (default 10, chosen on the benchmark's
                     validation draw; the paper's is 0.01)
  --variant NAME     ISAC objective variant (lib/isac/variant.ts; default ${DEFAULT_VARIANT})
  --ep EP            execution provider: auto (default: webgpu on a real GPU, sharing one
                     device with the kernels; else node if onnxruntime-node loads, else wasm)
                     | node | wasm | webgpu
  --out PATH         output PNG (default out/isac.png)
  --weights DIR      model directory (default the embedded weights/shapes)
  -h, --help         this text

Each row: [base image | its instance clusters | its class maps] then the same for ISAC's pick.`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      prompt: { type: "string" },
      seed: { type: "string" },
      rows: { type: "string" },
      candidates: { type: "string" },
      steps: { type: "string" },
      guidance: { type: "string" },
      method: { type: "string" },
      eta: { type: "string" },
      variant: { type: "string" },
      ep: { type: "string" },
      out: { type: "string" },
      weights: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const prompt = values.prompt ?? DEFAULT_PROMPT;
  const variant = isacVariant(values.variant ?? DEFAULT_VARIANT, "--variant");
  const seed = intArg("seed", values.seed, 0, Number.MIN_SAFE_INTEGER);
  const rows = intArg("rows", values.rows, 3, 1);
  const candidates = intArg("candidates", values.candidates, 4, 2);
  const steps = intArg("steps", values.steps, 25, 1);
  const guidance = numArg("guidance", values.guidance, 5, { min: 1 });
  const eta = numArg("eta", values.eta, 10, { min: 0 });
  const method = values.method ?? "select";
  if (method !== "select" && method !== "optimise") {
    throw new AttnkitError("--method", `must be "select" or "optimise", got "${method}"`);
  }
  const out = values.out ?? "out/isac.png";
  await prepareOutput(out);
  const ep = await epArg(values.ep);
  if (method === "optimise") {
    const { runOptimise } = await import("./isac_optimise.ts");
    await runOptimise({
      prompt,
      seed,
      rows,
      steps,
      guidance,
      out,
      weights: values.weights,
      ep,
      eta,
      variant,
    });
    return;
  }

  const t0 = performance.now();
  const model = await loadShapesModel({
    dir: values.weights,
    session: { executionProviders: [ep] },
  });
  const keepStep = Math.floor(steps / 2);
  const tiles: Uint8Array[] = [];
  let cols = 0;
  const T = 128;
  const summary: string[] = [];
  for (let r = 0; r < rows; r++) {
    const s = seed + r * candidates;
    const parsed = isacSpecFor(model, prompt);
    const sel = await selectLatent(model, prompt, {
      spec: { ...parsed, isac: { ...parsed.isac, variant } },
      seed: s,
      candidates,
      steps,
      guidance,
      keepSteps: [keepStep],
    });
    const images = await decodeLatents(model, sel.latents);
    const [, , H, W] = images.shape;
    const row: Uint8Array[] = [];
    const verdicts: string[] = [];
    for (const [label, i] of [["base", 0], ["ISAC", sel.best]] as const) {
      const snap: Snapshot = sel.snapshots[i][0];
      // The maps live at the largest attention layer's size (the latent's for the UNet, the
      // patch grid's for the DiT).
      const [lh, lw] = snap.maps.size;
      const image = imageBytes(images, i);
      const v = verdictOf(prompt, image);
      verdicts.push(`  ${label} (seed ${s + i}): ${v.text}`);
      row.push(drawText(
        resizeNearest(image, W, H, T, T),
        T,
        T,
        `${label} s${s + i} ${v.short}`,
      ));
      row.push(drawText(
        resizeNearest(
          clusterImage(snap.result.foreground, snap.result.assign, lh, lw),
          lw,
          lh,
          T,
          T,
        ),
        T,
        T,
        `inst t${keepStep}`,
      ));
      for (const target of sel.spec.targets) {
        const cross = snap.maps.cross;
        const col = new Float32Array(lh * lw);
        for (let p = 0; p < lh * lw; p++) {
          col[p] = cross.data[p * cross.shape[1] + target.classToken];
        }
        row.push(drawText(resizeNearest(heatmap(col, lh, lw), lw, lh, T, T), T, T, target.word));
      }
    }
    cols = row.length;
    tiles.push(...row);
    summary.push(
      `seed ${s}: scores ${
        sel.scores.map((v) => v.toFixed(3)).join(" ")
      } → ISAC picks candidate ${sel.best} (seed ${s + sel.best})`,
      ...verdicts,
    );
  }
  const grid = tileGrid(tiles, T, T, cols, 4, 255);
  await Deno.writeFile(out, await encodePng(grid.rgb, grid.width, grid.height));
  await model.release();
  console.log(
    `prompt: "${prompt}" (execution provider: ${ep}, variant ${values.variant ?? DEFAULT_VARIANT})`,
  );
  console.log(
    "tiles: image (label: classes found / asked, colour ignored) | instance clusters | class maps",
  );
  for (const line of summary) console.log(line);
  console.log(
    `wrote ${out} (${grid.width}×${grid.height}) in ${
      ((performance.now() - t0) / 1000).toFixed(1)
    } s`,
  );
}

if (import.meta.main) await runCli(main);
