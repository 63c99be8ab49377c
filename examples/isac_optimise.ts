/**
 * ISAC latent optimisation (Algorithm 1) on the embedded shapes model: for each seed, the base
 * sampler's image and the ISAC-optimised image from the same initial noise side by side, with the
 * per-step loss L_t (and its two terms) plotted beside them, written as one PNG.
 *
 *   deno run -A examples/isac.ts --method optimise          # writes out/isac.png
 *   deno run -A examples/isac_optimise.ts --help
 *
 * @module
 */
import { parseArgs } from "node:util";
import { AttnkitError } from "../lib/errors.ts";
import { loadShapesModel } from "../lib/models/shapes.ts";
import { optimiseLatent, type OptimiseStepLog } from "../lib/control/optimise_latent.ts";
import { decodeLatents, sampleLatents } from "../lib/runtime/sample.ts";
import { clusterImage, imageBytes, PALETTE, resizeNearest } from "../lib/viz/colour.ts";
import { drawText } from "../lib/viz/text.ts";
import { tileGrid } from "../lib/shapes/grid.ts";
import { encodePng } from "../lib/png.ts";
import type { ExecutionProvider } from "../lib/onnx/ort.ts";
import { epArg, intArg, numArg, prepareOutput, runCli } from "../lib/cli.ts";
import { isacLoss } from "../lib/isac/loss.ts";
import { accumulateMaps } from "../lib/attention/accumulate.ts";
import type { DiffusionModel } from "../lib/runtime/model.ts";
import { type Tensor, tensor } from "../lib/tensor.ts";
import { isacSpecFor, type PromptSpec } from "../lib/control/isac_spec.ts";
import type { IsacVariant } from "../lib/isac/loss.ts";
import { type Verdict, verdictOf } from "../lib/shapes/verdict.ts";

/** Options of {@link runOptimise}. */
export interface RunOptimiseOptions {
  /** The prompt. */
  prompt: string;
  /** First seed; row r uses seed + r. */
  seed: number;
  /** Number of seeds (rows). */
  rows: number;
  /** DDIM steps. */
  steps: number;
  /** Classifier-free guidance scale. */
  guidance: number;
  /** Output PNG path. */
  out: string;
  /** Model directory (default the embedded weights). */
  weights?: string;
  /** onnxruntime execution provider. */
  ep: ExecutionProvider;
  /** Learning rate η (default 0.01, the paper's). */
  eta?: number;
  /** ISAC objective variant (default attnkit-0.1). */
  variant?: IsacVariant;
}

const T = 128;

/** A line plot of series over steps (each scaled to the common max), RGB T × T. */
function lossPlot(
  series: { values: number[]; colour: readonly [number, number, number] }[],
): Uint8Array {
  const rgb = new Uint8Array(T * T * 3).fill(255);
  const top = 22, bottom = T - 6, left = 6, right = T - 6;
  let hi = 0;
  for (const s of series) for (const v of s.values) if (Number.isFinite(v)) hi = Math.max(hi, v);
  hi = hi || 1;
  const n = Math.max(...series.map((s) => s.values.length));
  const px = (i: number) => left + (n > 1 ? (i / (n - 1)) * (right - left) : 0);
  const py = (v: number) => bottom - (Math.max(0, v) / hi) * (bottom - top);
  const put = (x: number, y: number, c: readonly number[]) => {
    const xi = Math.round(x), yi = Math.round(y);
    if (xi < 0 || yi < 0 || xi >= T || yi >= T) return;
    rgb.set(c, (yi * T + xi) * 3);
  };
  for (let x = left; x <= right; x++) put(x, bottom + 1, [160, 160, 160]);
  for (const s of series) {
    for (let i = 1; i < s.values.length; i++) {
      const [x0, y0, x1, y1] = [px(i - 1), py(s.values[i - 1]), px(i), py(s.values[i])];
      const len = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0)));
      for (let k = 0; k <= len; k++) {
        put(x0 + ((x1 - x0) * k) / len, y0 + ((y1 - y0) * k) / len, s.colour);
      }
    }
  }
  return rgb;
}

/** The instance clusters ISAC sees in a finished latent (one tapped call at the last timestep). */
async function clustersOf(
  model: DiffusionModel,
  latents: Tensor,
  spec: PromptSpec,
  context: Tensor,
): Promise<Uint8Array> {
  const [, lh, lw] = model.info.latentShape;
  const res = await model.denoise(latents, 1, context, { taps: true });
  try {
    const r = isacLoss(accumulateMaps(res.taps![0]), spec.isac, { ins: 1, cls: 1 });
    return resizeNearest(clusterImage(r.foreground, r.assign, lh, lw), lw, lh, T, T);
  } catch (e) {
    // Too small a foreground for N instances: show an empty tile rather than stop the picture.
    if (e instanceof AttnkitError) return new Uint8Array(T * T * 3).fill(40);
    throw e;
  }
}

/** Base vs ISAC-optimised images per seed, with the per-step loss; writes `opts.out`. */
export async function runOptimise(opts: RunOptimiseOptions): Promise<void> {
  const t0 = performance.now();
  const model = await loadShapesModel({
    dir: opts.weights,
    session: { executionProviders: [opts.ep] },
  });
  const tiles: Uint8Array[] = [];
  const lines: string[] = [];
  const context = await model.encodeText([opts.prompt]);
  for (let r = 0; r < opts.rows; r++) {
    const seed = opts.seed + r;
    const common = {
      seed,
      steps: opts.steps,
      guidance: opts.guidance,
      progress: Deno.stderr.isTerminal(),
    };
    const base = await sampleLatents(model, opts.prompt, { ...common, label: `base s${seed}` });
    const parsed = isacSpecFor(model, opts.prompt);
    const spec = { ...parsed, isac: { ...parsed.isac, variant: opts.variant } };
    const opt = await optimiseLatent(model, opts.prompt, { ...common, eta: opts.eta, spec });
    const both = tensor(
      [2, ...base.shape.slice(1)],
      new Float32Array([...base.data, ...opt.latents.data]),
    );
    const images = await decodeLatents(model, both);
    const [, , H, W] = images.shape;
    const vb = verdictOf(opts.prompt, imageBytes(images, 0));
    const vo = verdictOf(opts.prompt, imageBytes(images, 1));
    const pctOf = (v: Verdict) => v.short;
    tiles.push(
      drawText(
        resizeNearest(imageBytes(images, 0), W, H, T, T),
        T,
        T,
        `base s${seed} ${pctOf(vb)}`,
      ),
    );
    tiles.push(drawText(await clustersOf(model, base, opt.spec, context), T, T, "inst"));
    tiles.push(
      drawText(resizeNearest(imageBytes(images, 1), W, H, T, T), T, T, `ISAC opt ${pctOf(vo)}`),
    );
    tiles.push(drawText(await clustersOf(model, opt.latents, opt.spec, context), T, T, "inst"));
    const log: OptimiseStepLog[] = opt.log;
    tiles.push(drawText(
      lossPlot([
        { values: log.map((s) => s.ins[0] * s.weights.ins), colour: PALETTE[0] },
        { values: log.map((s) => s.cls[0] * s.weights.cls), colour: PALETTE[2] },
        { values: log.map((s) => s.value[0]), colour: [0, 0, 0] },
      ]),
      T,
      T,
      `L max ${Math.max(0, ...log.map((s) => s.value[0])).toFixed(2)}`,
    ));
    lines.push(
      `seed ${seed}: L_t ${log.map((s) => s.value[0].toFixed(3)).join(" ")}` +
        ` | L_ins ${log[0]?.ins[0].toFixed(3)}→${log.at(-1)?.ins[0].toFixed(3)}` +
        ` L_cls ${log[0]?.cls[0].toFixed(3)}→${log.at(-1)?.cls[0].toFixed(3)}` +
        ` | ‖∇‖ ${Math.min(...log.map((s) => s.gradNorm[0])).toExponential(1)}…${
          Math.max(...log.map((s) => s.gradNorm[0])).toExponential(1)
        }`,
      `  base: ${vb.text}`,
      `  ISAC opt: ${vo.text}`,
    );
  }
  const grid = tileGrid(tiles, T, T, 5, 4, 255);
  await Deno.writeFile(opts.out, await encodePng(grid.rgb, grid.width, grid.height));
  await model.release();
  console.log(
    `prompt: "${opts.prompt}" (η = ${opts.eta ?? 0.01}, ${opts.steps} steps, EP ${opts.ep})`,
  );
  console.log("columns: base | its instances | ISAC-optimised | its instances | loss per step");
  console.log("plot: black L_t, red λ_ins·L_ins, blue λ_cls·L_cls");
  for (const line of lines) console.log(line);
  console.log(
    `wrote ${opts.out} (${grid.width}×${grid.height}) in ${
      ((performance.now() - t0) / 1000).toFixed(1)
    } s`,
  );
}

const HELP =
  `examples/isac_optimise.ts — ISAC latent optimisation (Algorithm 1) on the embedded model

Usage: deno run -A examples/isac_optimise.ts [options]

Options:
  --prompt TEXT   prompt (default "a photo of three yellow hearts")
  --seed N        first seed (a safe integer, default 0; negative as --seed=-5); row r uses
                  seed + r
  --rows N        seeds to compare (default 2)
  --steps N       DDIM steps (default 50)
  --guidance X    classifier-free guidance scale (default 5)
  --eta X         learning rate η (default 0.01)
  --ep EP         auto (default: webgpu on a real GPU, else node if it loads, else wasm)
                  | node | wasm | webgpu
  --out PATH      output PNG (default out/isac_optimise.png)
  --weights DIR   model directory (default the embedded weights/shapes)`;

async function main(): Promise<void> {
  {
    const { values } = parseArgs({
      args: Deno.args,
      options: {
        prompt: { type: "string" },
        seed: { type: "string" },
        rows: { type: "string" },
        steps: { type: "string" },
        guidance: { type: "string" },
        eta: { type: "string" },
        ep: { type: "string" },
        out: { type: "string" },
        weights: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) {
      console.log(HELP);
    } else {
      const seed = intArg("seed", values.seed, 0, Number.MIN_SAFE_INTEGER);
      const rows = intArg("rows", values.rows, 2, 1);
      const steps = intArg("steps", values.steps, 50, 1);
      const guidance = numArg("guidance", values.guidance, 5, { min: 1 });
      const eta = numArg("eta", values.eta, 0.01, { min: 0 });
      const out = values.out ?? "out/isac_optimise.png";
      await prepareOutput(out);
      const ep = await epArg(values.ep);
      await runOptimise({
        prompt: values.prompt ?? "a photo of three yellow hearts",
        seed,
        rows,
        steps,
        guidance,
        eta,
        ep,
        out,
        weights: values.weights,
      });
    }
  }
}

if (import.meta.main) await runCli(main);
