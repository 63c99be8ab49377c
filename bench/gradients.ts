/**
 * Cost of latent gradients through the embedded UNet (onnxruntime-web, wasm EP):
 * - per batch size (1, 2), each in a fresh process: plain forward, forward with taps, the
 *   JS map work (accumulate, ISAC loss, accumulate VJP), the VJP graph's first call (graph build
 *   + session) and its steady-state time, as ratios to the plain forward; peak RSS (VmHWM, reset
 *   between phases through /proc/self/clear_refs where the kernel allows) per phase.
 *   Times are process CPU time (user + system): on a shared machine wall time measures the
 *   other jobs as much as this one;
 * - end to end for one prompt and seed: ISAC latent optimisation (Algorithm 1, every step) vs the
 *   base sampler, same steps and guidance.
 * Writes bench/results/gradients.md and .json and prints the table.
 *
 *   deno run -A bench/gradients.ts [--steps 20] [--repeats 5] [--eps wasm,node] [--weights DIR]
 *
 * Probes and the end-to-end comparison run for each EP in --eps (default wasm, plus node when
 * onnxruntime-node loads).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { checkEp, intArg, runCli } from "../lib/cli.ts";
import { accumulateMaps } from "../lib/attention/accumulate.ts";
import { accumulateMapsBackward } from "../lib/attention/accumulate_backward.ts";
import { isacSpecFor } from "../lib/control/isac_spec.ts";
import { optimiseLatent } from "../lib/control/optimise_latent.ts";
import { isacLoss } from "../lib/isac/loss.ts";
import { loadShapesModel } from "../lib/models/shapes.ts";
import { type ExecutionProvider, fastestCpuProvider, ort } from "../lib/onnx/ort.ts";
import { initialLatents, sampleLatents } from "../lib/runtime/sample.ts";
import { schedule } from "../lib/schedule.ts";
import { tensor } from "../lib/tensor.ts";
// The timing and peak-RSS probes are the speed benchmarks' (one implementation).
import { type Call, median, once, resetPeak } from "./speed_support.ts";

const PROMPT = "a photo of two red circles and a blue square";

interface Phase {
  /** Process CPU time (user + system) per call, ms: min and median. */
  cpuMs: { min: number; median: number };
  /** Wall time per call, ms (median): inflated by other jobs on a shared machine. */
  wallMs: number;
  /** Peak RSS (VmHWM) during the phase, MiB. */
  peakMiB: number;
  /** Peak RSS minus RSS at the phase's start, MiB. */
  aboveStartMiB: number;
}

/** Summary of several {@link once} calls. */
function summarise(calls: readonly Call[]): Phase {
  return {
    cpuMs: { min: Math.min(...calls.map((c) => c.cpu)), median: median(calls.map((c) => c.cpu)) },
    wallMs: median(calls.map((c) => c.wall)),
    peakMiB: Math.max(...calls.map((c) => c.peak)),
    aboveStartMiB: Math.max(...calls.map((c) => c.above)),
  };
}

/** Runs `f` n times; CPU, wall and peak-RSS figures. */
async function phase(n: number, f: () => Promise<unknown> | unknown): Promise<Phase> {
  const calls = [];
  for (let i = 0; i < n; i++) calls.push(await once(f));
  return summarise(calls);
}

/**
 * One batch size, measured in this (fresh) process. The phases are interleaved round by round
 * after warm-up rounds: V8 runs wasm on its baseline compiler first and tiers up hot functions
 * later, so phases measured one after another would favour whichever came last.
 */
async function probe(
  batch: number,
  repeats: number,
  ep: ExecutionProvider,
  weights?: string,
  warmup = 4,
) {
  ort.env.logLevel = "error";
  const model = await loadShapesModel({ dir: weights, session: { executionProviders: [ep] } });
  const spec = isacSpecFor(model, PROMPT);
  const cond = await model.encodeText([PROMPT]);
  const ctx = tensor(
    [batch, ...cond.shape.slice(1)],
    new Float32Array(Array.from({ length: batch }, () => [...cond.data]).flat()),
  );
  const x = initialLatents(model.info.latentShape, 0, batch);
  const t = 601;
  const w = schedule.soft(t, model.info.trainSteps);
  const res = await model.denoise(x, t, ctx, { taps: true });
  const loadedMiB = Deno.memoryUsage().rss / 2 ** 20;
  const canReset = await resetPeak();
  let tapGrads = res.taps!.map((taps) => accumulateMapsBackward(taps, {}));
  const maps = () => {
    tapGrads = res.taps!.map((taps) => {
      const r = isacLoss(accumulateMaps(taps), spec.isac, w);
      return accumulateMapsBackward(taps, r.grad);
    });
  };
  maps();
  // The process without a VJP session: forward and map work only.
  const beforeVjp = await phase(2, async () => {
    await model.denoise(x, t, ctx, { taps: true });
    maps();
  });
  const vjpBuild = await phase(1, () => model.gradient(x, t, ctx, tapGrads));
  const calls = { forward: [], forwardTaps: [], mapsCpu: [], vjp: [] } as Record<
    "forward" | "forwardTaps" | "mapsCpu" | "vjp",
    Awaited<ReturnType<typeof once>>[]
  >;
  for (let r = 0; r < warmup + repeats; r++) {
    const round = {
      forward: await once(() => model.denoise(x, t, ctx)),
      forwardTaps: await once(() => model.denoise(x, t, ctx, { taps: true })),
      mapsCpu: await once(maps),
      vjp: await once(() => model.gradient(x, t, ctx, tapGrads)),
    };
    if (r < warmup) continue;
    for (const k of Object.keys(round) as (keyof typeof round)[]) calls[k].push(round[k]);
  }
  const u = Deno.memoryUsage();
  await model.release();
  return {
    ep,
    batch,
    repeats,
    warmup,
    loadedMiB,
    peakResetBetweenPhases: canReset,
    externalMiBAfterVjp: u.external / 2 ** 20,
    beforeVjp,
    forward: summarise(calls.forward),
    forwardTaps: summarise(calls.forwardTaps),
    mapsCpu: summarise(calls.mapsCpu),
    vjpBuild,
    vjp: summarise(calls.vjp),
  };
}

type Probe = Awaited<ReturnType<typeof probe>>;

async function runProbe(
  batch: number,
  repeats: number,
  ep: ExecutionProvider,
  weights?: string,
): Promise<Probe> {
  const args = [
    "run",
    "-A",
    new URL(import.meta.url).pathname,
    "--probe",
    String(batch),
    "--repeats",
    String(repeats),
    "--ep",
    ep,
  ];
  if (weights) args.push("--weights", weights);
  const out = await new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "inherit" })
    .output();
  if (!out.success) throw new Error(`probe for batch ${batch} failed`);
  const text = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!;
  return JSON.parse(text);
}

async function endToEnd(steps: number, ep: ExecutionProvider, weights?: string) {
  ort.env.logLevel = "error";
  const model = await loadShapesModel({ dir: weights, session: { executionProviders: [ep] } });
  const common = { seed: 0, steps, guidance: 5, progress: false };
  // Warm-up (VJP session build, V8 tier-up) with short runs outside the timed ones.
  await sampleLatents(model, PROMPT, { ...common, steps: 3 });
  await optimiseLatent(model, PROMPT, { ...common, steps: 3 });
  const base = await phase(1, () => sampleLatents(model, PROMPT, common));
  let log: Awaited<ReturnType<typeof optimiseLatent>>["log"] = [];
  const opt = await phase(1, async () => {
    log = (await optimiseLatent(model, PROMPT, common)).log;
  });
  await model.release();
  return {
    ep,
    prompt: PROMPT,
    steps,
    guidance: 5,
    base,
    optimise: opt,
    cpuRatio: opt.cpuMs.min / base.cpuMs.min,
    wallRatio: opt.wallMs / base.wallMs,
    optimisedSteps: log.length,
    loss: log.map((s) => s.value[0]),
    gradNorm: log.map((s) => s.gradNorm[0]),
  };
}

function table(probes: Probe[], e2es: Awaited<ReturnType<typeof endToEnd>>[]): string {
  const f = (v: number, d = 1) => v.toFixed(d);
  const rows = probes.map((p) => {
    const fw = p.forward.cpuMs.min;
    return `| ${p.ep} | ${p.batch} | ${f(fw)} | ${f(p.forwardTaps.cpuMs.min)} | ${
      f(p.vjp.cpuMs.min)
    } | ${f(p.vjp.cpuMs.min / fw, 2)} | ${f(p.mapsCpu.cpuMs.min)} | ${f(p.vjpBuild.cpuMs.min)} | ${
      f(p.loadedMiB)
    } | ${f(p.forward.aboveStartMiB)} | ${f(p.forwardTaps.aboveStartMiB)} | ${
      f(p.vjpBuild.aboveStartMiB)
    } | ${f(p.vjp.aboveStartMiB)} | ${
      f(Math.max(p.vjpBuild.peakMiB, p.vjp.peakMiB) / p.beforeVjp.peakMiB, 2)
    } |`;
  });
  const lossRange = (xs: number[]) =>
    `${Math.min(...xs).toExponential(2)} … ${Math.max(...xs).toExponential(2)}`;
  return [
    "# Latent gradients through the embedded UNet",
    "",
    `Machine: ${Deno.build.os}/${Deno.build.arch}, ${navigator.hardwareConcurrency} logical CPUs ` +
    "shared with training jobs; ORT with 1 thread (wasm: onnxruntime-web; node: onnxruntime-node CPU). Times are process CPU time " +
    `(user + system), min of ${probes[0].repeats} rounds after ${
      probes[0].warmup
    } warm-up rounds, ` +
    "phases interleaved; wall times were several times larger and " +
    "erratic under the load, see the .json. Each batch size runs in a fresh process.",
    `Prompt "${PROMPT}", timestep 601, soft λ.`,
    "",
    "| EP | batch | fwd CPU ms | fwd+taps | VJP | VJP ÷ fwd | maps+ISAC+map-VJP (JS) | VJP build (1st call) | RSS loaded MiB | Δpeak fwd | Δpeak fwd+taps | Δpeak VJP build | Δpeak VJP | process peak with VJP ÷ before the VJP session |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ...rows,
    "",
    "Δpeak = VmHWM during the phase minus RSS at its start (MiB), VmHWM reset between phases: " +
    `${
      probes[0].peakResetBetweenPhases
    }. ORT's wasm arena cannot be read through onnxruntime-web's ` +
    "API; it is inside RSS (wasm memory only grows, so a phase that needs no new arena adds ~0). " +
    "The VJP graph takes the latents and recomputes the forward itself, so one ISAC step costs " +
    "fwd+taps + the JS map work + VJP.",
    "",
    `## End to end (${e2es[0].steps} DDIM steps, guidance ${
      e2es[0].guidance
    }, seed 0, after a warm-up run)`,
    "",
    "| EP | base CPU ms | ISAC optimise CPU ms | CPU ratio | wall ratio | optimised steps | L_t range | ‖∇‖ range |",
    "|---|---|---|---|---|---|---|---|",
    ...e2es.map((e2e) =>
      `| ${e2e.ep} | ${f(e2e.base.cpuMs.min)} | ${f(e2e.optimise.cpuMs.min)} | ${
        f(e2e.cpuRatio, 2)
      } | ${f(e2e.wallRatio, 2)} | ${e2e.optimisedSteps} | ${lossRange(e2e.loss)} | ${
        lossRange(e2e.gradNorm)
      } |`
    ),
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
      ep: { type: "string" },
      eps: { type: "string" },
    },
  });
  const repeats = intArg("repeats", values.repeats, 5, 1);
  const steps = intArg("steps", values.steps, 20, 1);
  if (values.probe) {
    const ep = checkEp(values.ep ?? "wasm") as ExecutionProvider;
    const batch = intArg("probe", values.probe, 1, 1);
    console.log(JSON.stringify(await probe(batch, repeats, ep, values.weights)));
    return;
  }
  const fastest = await fastestCpuProvider();
  // Probes and end-to-end runs for each EP.
  const eps = (values.eps ?? (fastest === "node" ? "wasm,node" : "wasm")).split(",")
    .map((e) => checkEp(e.trim()) as ExecutionProvider);
  const probes: Probe[] = [];
  for (const ep of eps) {
    for (const batch of [1, 2]) probes.push(await runProbe(batch, repeats, ep, values.weights));
  }
  const e2e = [];
  for (const ep of eps) e2e.push(await endToEnd(steps, ep, values.weights));
  const md = table(probes, e2e);
  const dir = new URL("./results/", import.meta.url);
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(new URL("gradients.md", dir), md);
  await Deno.writeTextFile(
    new URL("gradients.json", dir),
    JSON.stringify({ probes, endToEnd: e2e }, null, 2) + "\n",
  );
  console.log(md);
}

if (import.meta.main) await runCli(main);
