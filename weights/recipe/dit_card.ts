/**
 * Writes weights/shapes-dit/MODEL_CARD.md from what export_dit.sh measured: the exported
 * config.json (architecture, checkpoint step), the training log dit.log.jsonl (wall time, seconds
 * per step) and bench/results/dit/model_quality.{json,md} (detector-judged quality, time per
 * image). Every figure in the card comes from those files; the prose around them is fixed.
 * Usage: deno run -A weights/recipe/dit_card.ts [--weights weights/shapes-dit] [--results bench/results/dit]
 *
 * @module
 */
import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    weights: { type: "string", default: "weights/shapes-dit" },
    results: { type: "string", default: "bench/results/dit" },
  },
});
const W = values.weights!, R = values.results!;
const config = JSON.parse(await Deno.readTextFile(`${W}/config.json`));
const quality = JSON.parse(await Deno.readTextFile(`${R}/model_quality.json`));
const qualityMd = await Deno.readTextFile(`${R}/model_quality.md`);
const log = (await Deno.readTextFile(`${W}/dit.log.jsonl`)).trim().split("\n").map((l) =>
  JSON.parse(l) as Record<string, number>
);

/** Runs of the log (elapsed time restarts with each launch) and seconds per step. */
function trainingTime(lines: Record<string, number>[]) {
  let total = 0, runs = 0, prev = -1, runMax = 0;
  const rates: number[] = [];
  let last: Record<string, number> | undefined;
  for (const l of lines) {
    if (l.elapsed_s === undefined) continue;
    if (l.elapsed_s < prev) {
      total += runMax;
      runs++;
      runMax = 0;
      last = undefined;
    }
    runMax = l.elapsed_s;
    prev = l.elapsed_s;
    if (l.step !== undefined) {
      if (last && l.step > last.step) rates.push((l.elapsed_s - last.elapsed_s) / (l.step - last.step));
      last = l;
    }
  }
  total += runMax;
  runs++;
  rates.sort((a, b) => a - b);
  const med = rates.length ? rates[Math.floor(rates.length / 2)] : NaN;
  return { hours: total / 3600, runs, median: med, min: rates[0] ?? NaN, max: rates.at(-1) ?? NaN };
}

const t = trainingTime(log);
const steps = config.training.steps;
const lastLoss = [...log].reverse().find((l) => l.loss !== undefined && l.step < steps);
const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
const section = (title: string) => {
  const i = qualityMd.indexOf(title);
  if (i < 0) return "";
  const rest = qualityMd.slice(i + title.length);
  const j = rest.search(/\n#{1,3} /);
  return (j < 0 ? rest : rest.slice(0, j)).trim();
};
const timing = quality.timing?.medianMs ? (quality.timing.medianMs / 1000).toFixed(2) : "n/a";
const single = quality.single;
const layers = config.attention_layers as { name: string; kind: string }[];
const joint = layers.filter((l) => l.kind === "joint").length;
const singles = layers.length - joint;

const card = `# attnkit-shapes-dit: the embedded diffusion transformer

An MMDiT-style rectified-flow transformer (the SD3 / Flux family) on the same shapes world and
latent space as the embedded UNet model (\`weights/shapes/\`), so that joint attention,
flow-matching sampling and every control (ISAC selection and optimisation, A&E, IoU, MIFO boxes,
steering) can be exercised on a DiT without a model hub. Load it with
\`loadShapesModel({ dir: "weights/shapes-dit" })\`; run \`deno run -A examples/isac.ts --weights
weights/shapes-dit\`.

**Status: still training.** This card describes the checkpoint at **step ${steps}** of a planned
${config.training.planned_steps}-step run (batch ${config.training.batch}); training continues in
later sessions (\`bash weights/recipe/run_dit.sh\`), and \`bash weights/recipe/export_dit.sh\`
re-exports the latest checkpoint and regenerates this card.

## Architecture (\`weights/recipe/models_dit.py\`)

- Input: the 16×16×4 latent of the shipped autoencoder (scale factor ${
  config.scale_factor.toFixed(4)
}), 2×2 patches → ${config.tokens.image[1] - config.tokens.image[0]} image tokens
  (Linear + learned positions).
- Text: the shipped UNet model's text encoder, **frozen** (its [${config.text.max_tokens}, ${config.text.hidden}]
  states, projected per token); its mean over tokens joins the timestep embedding as the
  conditioning vector (SD3's pooled text + timestep).
- Joint sequence: text tokens [${config.tokens.text}) then image tokens [${config.tokens.image}).
- ${joint} MMDiT double-stream blocks: separate text and image adaLN-zero modulations, q/k/v
  projections, qk-RMSNorm, output projections and MLPs; ONE softmax over all tokens; 2D rotary
  embeddings on image q and k (text tokens: identity rotation, as Flux's zero text ids).
- ${singles} Flux single-stream blocks: one sequence, one fused Linear for q/k/v and the MLP input,
  one fused output Linear.
- Final adaLN + Linear, unpatchify: the velocity v = ε − x₀. Width ${
  layers.length ? config.attention_layers[0].heads * config.attention_layers[0].head_dim : "?"
}, ${config.attention_layers[0]?.heads} heads of ${config.attention_layers[0]?.head_dim}.
- ONNX opset 17, attention as plain MatMul → Mul → Softmax → MatMul (\`transformer.onnx\`); the
  text encoder, VAE decoder/encoder and tokenizer are copies of \`weights/shapes/\`'s, so the
  folder is self-contained.

## Training (\`bash weights/recipe/run_dit.sh\`)

Rectified flow (Esser et al. 2024): x_σ = (1 − σ) x₀ + σ ε, σ ~ logit-normal(0, 1), loss ‖v̂ − (ε − x₀)‖²,
timestep σ·1000; 10% caption dropout for classifier-free guidance; AdamW, cosine learning rate
over the planned steps; EMA 0.999 (exported). Data: the UNet's 60,000 scenes and their mirror
images (120,000 latents), encoded once with the shipped encoder (\`encode_dit_data.py\`).

- Wall time so far: **${t.hours.toFixed(2)} h** over ${t.runs} launch(es), one thread under
  \`nice -n 10\` on the shared 2-core build machine; **${
  t.median.toFixed(2)
} s per step** (median over logged intervals; ${t.min.toFixed(2)}–${
  t.max.toFixed(2)
} s: the machine is shared with other jobs, and the same step measured 0.7–0.8 s when it was quiet).
- Loss at step ${lastLoss?.step ?? "?"}: ${lastLoss?.loss ?? "?"} (log: \`dit.log.jsonl\`).
- Resumable: \`weights/recipe/runs/dit.pt\` (weights, EMA, optimiser, RNG), and the committed
  compact checkpoint \`weights/recipe/resume/dit.pt\` (optimiser moments in bfloat16) on a fresh
  checkout. \`/usr/bin/python3 weights/recipe/replay_check.py --only dit\` reruns the first 101
  steps from scratch and compares every logged loss and learning rate with \`dit.log.jsonl\`.

## Measured quality (\`${quality.command}\`)

Flow-matching Euler ${quality.steps} steps, guidance ${quality.guidance}, seeds ${
  quality.seeds.join(", ")
}, the detector (\`lib/shapes/detect.ts\`) as judge — the same command and judge as the UNet
model's card.

- **Single objects (${single.trials} images): class and colour right ${pct(single.correct)}**
  (target ≥ 90%${single.correct >= 0.9 ? ": met" : ": not yet met at this step"}); largest
  object's class right ${pct(single.classRate)}, colour right ${pct(single.colourRate)}.
- **Time per image: ${timing} s** for one 50-step flow-matching image with guidance
  (onnxruntime-web wasm, 1 thread, median; batch 2 per step).

### Multi-class (k classes from one category)

${section("### Multi-class (k classes from one category)")}

### Multi-instance (n of one class)

${section("### Multi-instance (n of one class)")}

Full tables: \`${R}/model_quality.md\`. Sample sheet: \`samples.png\`.
`;
await Deno.writeTextFile(`${W}/MODEL_CARD.md`, card);
console.log(`wrote ${W}/MODEL_CARD.md (step ${steps})`);
