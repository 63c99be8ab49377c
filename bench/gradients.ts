/**
 * Cost of latent gradients through the embedded UNet (onnxruntime-web, wasm EP):
 * - per batch size (1, 2), each in a fresh process: plain forward, forward with taps, the
 *   CPU map work (accumulate, ISAC loss, accumulate VJP), the VJP graph's first call (graph build
 *   + session) and its steady-state time, as ratios to the plain forward; peak RSS (VmHWM, reset
 *   between phases through /proc/self/clear_refs where the kernel allows) per phase, as ratios;
 * - end to end for one prompt and seed: ISAC latent optimisation (Algorithm 1, every step) vs the
 *   base sampler, same steps and guidance.
 * Writes bench/results/gradients.md and .json and prints the table.
 *
 *   deno run -A bench/gradients.ts [--steps 20] [--repeats 5] [--weights DIR]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { accumulateMaps } from "../lib/attention/accumulate.ts";
import { accumulateMapsBackward } from "../lib/attention/accumulate_backward.ts";
import { isacSpecFor } from "../lib/control/isac_spec.ts";
import { optimiseLatent } from "../lib/control/optimise_latent.ts";
import { isacLoss } from "../lib/isac/loss.ts";
import { loadShapesModel } from "../lib/models/shapes.ts";
import { ort } from "../lib/onnx/ort.ts";
import { initialLatents, sampleLatents } from "../lib/runtime/sample.ts";
import { schedule } from "../lib/schedule.ts";
import { tensor } from "../lib/tensor.ts";

const PROMPT = "a photo of two red circles and a blue square";

interface Mem {
  rssMiB: number;
  hwmMiB: number;
  externalMiB: number;
}

async function mem(): Promise<Mem> {
  const status = await Deno.readTextFile("/proc/self/status");
  const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
  const u = Deno.memoryUsage();
  return { rssMiB: u.rss / 2 ** 20, hwmMiB: hwm, externalMiB: u.external / 2 ** 20 };
}

/** Resets VmHWM to the current RSS; false where the kernel or sandbox refuses. */
async function resetPeak(): Promise<boolean> {
  try {
    await Deno.writeTextFile("/proc/self/clear_refs", "5");
    return true;
  } catch {
    return false;
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function timed(n: number, f: () => Promise<unknown> | unknown): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await f();
    out.push(performance.now() - t);
  }
  return out;
}

/** One batch size, measured in this (fresh) process. */
async function probe(batch: number, repeats: number, weights?: string) {
  ort.env.logLevel = "error";
  const m0 = await mem();
  const model = await loadShapesModel({ dir: weights });
  const spec = isacSpecFor(model, PROMPT);
  const cond = await model.encodeText([PROMPT]);
  const ctx = tensor(
    [batch, ...cond.shape.slice(1)],
    new Float32Array(Array.from({ length: batch }, () => [...cond.data]).flat()),
  );
  const x = initialLatents(model.info.latentShape, 0, batch);
  const t = 601;
  const w = schedule.soft(t, model.info.trainSteps);
  await model.denoise(x, t, ctx); // warm-up
  await model.denoise(x, t, ctx, { taps: true });
  const loaded = await mem();
  const canReset = await resetPeak();
  const plain = await timed(repeats, () => model.denoise(x, t, ctx));
  const withTaps = await timed(repeats, () => model.denoise(x, t, ctx, { taps: true }));
  const forward = await mem();
  const res = await model.denoise(x, t, ctx, { taps: true });
  let tapGrads = res.taps!.map((taps) => accumulateMapsBackward(taps, {}));
  const cpu = await timed(repeats, () => {
    tapGrads = res.taps!.map((taps) => {
      const maps = accumulateMaps(taps);
      const r = isacLoss(maps, spec.isac, w);
      return accumulateMapsBackward(taps, r.grad);
    });
  });
  await resetPeak();
  const [build] = await timed(1, () => model.gradient(x, t, ctx, tapGrads));
  const built = await mem();
  await resetPeak();
  const vjp = await timed(repeats, () => model.gradient(x, t, ctx, tapGrads));
  const after = await mem();
  await model.release();
  return {
    batch,
    repeats,
    ms: {
      forward: median(plain),
      forwardTaps: median(withTaps),
      mapsLossBackwardCpu: median(cpu),
      vjpFirstCall: build,
      vjp: median(vjp),
    },
    memMiB: {
      start: m0,
      loaded,
      forwardPeak: forward.hwmMiB,
      vjpBuildPeak: built.hwmMiB,
      vjpPeak: after.hwmMiB,
      peakResetBetweenPhases: canReset,
      externalAfterVjp: after.externalMiB,
    },
  };
}

type Probe = Awaited<ReturnType<typeof probe>>;

async function runProbe(batch: number, repeats: number, weights?: string): Promise<Probe> {
  const args = ["run", "-A", new URL(import.meta.url).pathname, "--probe", String(batch), "--repeats", String(repeats)];
  if (weights) args.push("--weights", weights);
  const out = await new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "inherit" }).output();
  if (!out.success) throw new Error(`probe for batch ${batch} failed`);
  const text = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!;
  return JSON.parse(text);
}

async function endToEnd(steps: number, weights?: string) {
  ort.env.logLevel = "error";
  const model = await loadShapesModel({ dir: weights });
  const common = { seed: 0, steps, guidance: 5, progress: false };
  // Build the VJP session once, outside the timed runs.
  const spec = isacSpecFor(model, PROMPT);
  const cond = await model.encodeText([PROMPT]);
  const x = initialLatents(model.info.latentShape, 0, 1);
  const r = await model.denoise(x, 601, cond, { taps: true });
  const g = r.taps!.map((taps) => {
    const maps = accumulateMaps(taps);
    return accumulateMapsBackward(taps, isacLoss(maps, spec.isac, { ins: 1, cls: 1 }).grad);
  });
  await model.gradient(x, 601, cond, g);
  const [baseMs] = await timed(1, () => sampleLatents(model, PROMPT, common));
  let log: Awaited<ReturnType<typeof optimiseLatent>>["log"] = [];
  const [optMs] = await timed(1, async () => {
    log = (await optimiseLatent(model, PROMPT, common)).log;
  });
  await model.release();
  return {
    prompt: PROMPT,
    steps,
    guidance: 5,
    baseMs,
    optimiseMs: optMs,
    ratio: optMs / baseMs,
    optimisedSteps: log.length,
    firstLoss: log[0]?.value[0],
    lastLoss: log.at(-1)?.value[0],
    gradNorm: [Math.min(...log.map((s) => s.gradNorm[0])), Math.max(...log.map((s) => s.gradNorm[0]))],
  };
}

function table(probes: Probe[], e2e: Awaited<ReturnType<typeof endToEnd>>): string {
  const f = (v: number, d = 1) => v.toFixed(d);
  const rows = probes.map((p) => {
    const inc = (v: number) => v - p.memMiB.loaded.rssMiB;
    return `| ${p.batch} | ${f(p.ms.forward)} | ${f(p.ms.forwardTaps)} | ${f(p.ms.vjp)} | ${
      f(p.ms.vjp / p.ms.forward, 2)
    } | ${f(p.ms.vjpFirstCall)} | ${f(p.ms.mapsLossBackwardCpu)} | ${f(p.memMiB.loaded.rssMiB)} | ${
      f(p.memMiB.forwardPeak)
    } | ${f(p.memMiB.vjpPeak)} | ${f(p.memMiB.vjpPeak / p.memMiB.forwardPeak, 2)} | ${
      f(inc(p.memMiB.vjpPeak))
    } / ${f(inc(p.memMiB.forwardPeak))} |`;
  });
  return [
    "# Latent gradients through the embedded UNet",
    "",
    `Machine: ${Deno.build.os}/${Deno.build.arch}, onnxruntime-web wasm EP, 1 thread, ${
      navigator.hardwareConcurrency
    } logical CPUs shared with training jobs (timings are medians of ${probes[0].repeats}, noisy).`,
    `Prompt "${PROMPT}", timestep 601, soft λ. Each batch size runs in a fresh process.`,
    "",
    "| batch | forward ms | fwd+taps ms | VJP ms | VJP ÷ fwd | VJP 1st call ms (build) | maps+loss+VJP CPU ms | RSS loaded MiB | peak fwd MiB | peak VJP MiB | peak VJP ÷ fwd | above loaded: VJP / fwd MiB |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ...rows,
    "",
    `Peaks are VmHWM; reset between phases: ${probes[0].memMiB.peakResetBetweenPhases}. ORT's wasm arena ` +
    "is not readable through onnxruntime-web's API; it is inside RSS. The VJP graph takes the latents and " +
    "recomputes the forward itself, so one ISAC step costs fwd+taps + CPU map work + VJP.",
    "",
    `## End to end (${e2e.steps} DDIM steps, guidance ${e2e.guidance}, seed 0)`,
    "",
    "| base ms | ISAC optimise ms | ratio | optimised steps | L_t first → last | ‖∇‖ min … max |",
    "|---|---|---|---|---|---|",
    `| ${f(e2e.baseMs)} | ${f(e2e.optimiseMs)} | ${f(e2e.ratio, 2)} | ${e2e.optimisedSteps} | ${
      e2e.firstLoss?.toFixed(4)
    } → ${e2e.lastLoss?.toFixed(4)} | ${e2e.gradNorm[0].toExponential(2)} … ${e2e.gradNorm[1].toExponential(2)} |`,
    "",
  ].join("\n");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      probe: { type: "string" },
      repeats: { type: "string" },
      steps: { type: "string" },
      weights: { type: "string" },
    },
  });
  const repeats = Number(values.repeats ?? "5");
  if (values.probe) {
    console.log(JSON.stringify(await probe(Number(values.probe), repeats, values.weights)));
    return;
  }
  const probes = [await runProbe(1, repeats, values.weights), await runProbe(2, repeats, values.weights)];
  const e2e = await endToEnd(Number(values.steps ?? "20"), values.weights);
  const md = table(probes, e2e);
  const dir = new URL("./results/", import.meta.url);
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(new URL("gradients.md", dir), md);
  await Deno.writeTextFile(new URL("gradients.json", dir), JSON.stringify({ probes, endToEnd: e2e }, null, 2) + "\n");
  console.log(md);
}

if (import.meta.main) await main();
