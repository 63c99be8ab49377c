/**
 * Where the time of ISAC goes, and the issue-13 targets as ratios measured in one process:
 *
 * 1. Embedded model (onnxruntime-node CPU, one thread), per denoising step: the denoiser, the
 *    taps' read-back, the map accumulation, the ISAC loss (value and d/dmaps), the map backward
 *    to Q and K, and the VJP through the UNet, for base sampling, ISAC selection (N = 4) and ISAC
 *    optimisation (Algorithm 1), plus whole runs of each with their ratios. The Algorithm-1
 *    floor (forward of X_t with grad + backward + forward of the updated latent) is the VJP
 *    graph's time (it runs the forward and the backward) plus one guided forward, per step.
 * 2. One SD-scale self + cross tap (64×64, 8 heads, d = 40, L = 77): attnkit's map path against
 *    onnxruntime-node's MatMul → Softmax → ReduceMean over the same Q and K, one thread each, with
 *    the peak memory of each.
 *
 * Times are process CPU time (user + system) unless marked wall: the machine is shared, and CPU
 * time counts this process only. Each figure is the minimum over `--repeats` interleaved rounds
 * after a warm-up round; the median and maximum are in the .json to show the noise.
 *
 *   deno run -A bench/speed.ts [--label before] [--steps 20] [--repeats 5] [--no-sd] [--no-e2e]
 *
 * Writes bench/results/speed_<label>.md and .json.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { accumulateMapsAuto } from "../kernels/accumulate_maps.ts";
import { accumulateMaps } from "../lib/attention/accumulate.ts";
import { accumulateMapsBackward } from "../lib/attention/accumulate_backward.ts";
import type { AttentionTap } from "../lib/attention/types.ts";
import { isacSpecFor } from "../lib/control/isac_spec.ts";
import { optimiseLatent } from "../lib/control/optimise_latent.ts";
import { selectLatent } from "../lib/control/select_latent.ts";
import { isacLoss } from "../lib/isac/loss.ts";
import { loadShapesModel } from "../lib/models/shapes.ts";
import { initializer, model as onnxModel, node, valueInfo } from "../lib/onnx/build.ts";
import { createSession, type ExecutionProvider, ort } from "../lib/onnx/ort.ts";
import { encodeModel } from "../lib/onnx/proto.ts";
import { gaussian, mulberry32 } from "../lib/random.ts";
import { initialLatents, sampleLatents } from "../lib/runtime/sample.ts";
import { schedule } from "../lib/schedule.ts";
import { tensor } from "../lib/tensor.ts";
import { fx, interleaved, loadAverage, type Phase } from "./speed_support.ts";

const PROMPT = "a photo of two red circles and a blue square";
const T = 601;

function repeatRows(t: { shape: readonly number[]; data: Float32Array }, n: number) {
  const out = new Float32Array(t.data.length * n);
  for (let i = 0; i < n; i++) out.set(t.data, i * t.data.length);
  return tensor([t.shape[0] * n, ...t.shape.slice(1)], out);
}

/** Per-step phases on the embedded model. */
async function breakdown(ep: ExecutionProvider, repeats: number) {
  const model = await loadShapesModel({ session: { executionProviders: [ep] } });
  const spec = isacSpecFor(model, PROMPT);
  const w = schedule.soft(T, model.info.trainSteps);
  const cond = await model.encodeText([PROMPT]);
  const uncond = await model.encodeText([""]);
  const n = 4;
  const x1 = initialLatents(model.info.latentShape, 0, 1);
  const x4 = initialLatents(model.info.latentShape, 0, n);
  const ctx1 = cond;
  const ctx2 = tensor(
    [2, ...cond.shape.slice(1)],
    new Float32Array([...uncond.data, ...cond.data]),
  );
  const ctx8 = tensor(
    [2 * n, ...cond.shape.slice(1)],
    new Float32Array([...repeatRows(uncond, n).data, ...repeatRows(cond, n).data]),
  );
  const x2 = repeatRows(x1, 2);
  const x8 = repeatRows(x4, 2);
  let taps8: AttentionTap[][] = (await model.denoise(x8, T, ctx8, { taps: true })).taps!.slice(n);
  let taps1: AttentionTap[][] = (await model.denoise(x1, T, ctx1, { taps: true })).taps!;
  let maps8 = taps8.map((t) => accumulateMaps(t));
  let maps1 = taps1.map((t) => accumulateMaps(t));
  let grads1 = maps1.map((m) => isacLoss(m, spec.isac, w).grad);
  let tapGrads1 = taps1.map((t, i) => accumulateMapsBackward(t, grads1[i]));
  await model.gradient(x1, T, ctx1, tapGrads1);
  const graphMaps = typeof model.gradientFromMaps === "function";
  if (graphMaps) {
    await model.denoise(x8, T, ctx8, { maps: true });
    await model.gradientFromMaps!(x1, T, ctx1, grads1);
  }
  const phases = await interleaved(
    {
      // Base sampling: one guided call of N = 1 (batch 2) and of N = 4 (batch 8).
      "fwd b2": () => model.denoise(x2, T, ctx2),
      "fwd b8": () => model.denoise(x8, T, ctx8),
      // Selection, N = 4: the guided call with taps, then per candidate maps and loss.
      "fwd+taps b8": async () => {
        taps8 = (await model.denoise(x8, T, ctx8, { taps: true })).taps!.slice(n);
      },
      "accumulate ×4": () => {
        maps8 = taps8.map((t) => accumulateMaps(t));
      },
      "loss ×4": () => maps8.map((m) => isacLoss(m, spec.isac, w)),
      // Optimisation, N = 1: conditional call with taps, maps, loss, map backward, VJP.
      "fwd+taps b1": async () => {
        taps1 = (await model.denoise(x1, T, ctx1, { taps: true })).taps!;
      },
      "fwd b1": () => model.denoise(x1, T, ctx1),
      "accumulate ×1": () => {
        maps1 = taps1.map((t) => accumulateMaps(t));
      },
      "loss+grad ×1": () => {
        grads1 = maps1.map((m) => isacLoss(m, spec.isac, w).grad);
      },
      "map backward ×1": () => {
        tapGrads1 = taps1.map((t, i) => accumulateMapsBackward(t, grads1[i]));
      },
      "VJP b1": () => model.gradient(x1, T, ctx1, tapGrads1),
      // The in-graph path (lib/hooks/maps_graph.ts): maps from the denoiser call, VJP from maps.
      ...(graphMaps
        ? {
          "fwd+maps b8": () => model.denoise(x8, T, ctx8, { maps: true }),
          "fwd+maps b1": () => model.denoise(x1, T, ctx1, { maps: true }),
          "VJP from maps b1": () => model.gradientFromMaps!(x1, T, ctx1, grads1),
          // Optimisation as latentGrad runs it: the VJP's forward half gives the maps and keeps
          // what the backward half reads, then only the backward half runs.
          "fwd+maps (VJP forward half) b1": () =>
            model.denoise(x1, T, ctx1, { maps: true, grad: true }),
          "VJP backward half b1": () => model.gradientFromMaps!(x1, T, ctx1, grads1),
        }
        : {}),
    } as Record<string, () => unknown>,
    repeats,
    2,
  );
  await model.release();
  const c = (k: string) => phases[k]?.cpuMs.min ?? NaN;
  const derived: Record<string, number> = {
    "taps read-back b8 (fwd+taps − fwd)": c("fwd+taps b8") - c("fwd b8"),
    "taps read-back b1 (fwd+taps − fwd)": c("fwd+taps b1") - c("fwd b1"),
    "selection step ÷ base step (N = 4)": (c("fwd+taps b8") + c("accumulate ×4") + c("loss ×4")) /
      c("fwd b8"),
    "optimisation step ÷ base step (N = 1)": (c("fwd+taps b1") + c("accumulate ×1") +
      c("loss+grad ×1") + c("map backward ×1") + c("VJP b1") + c("fwd b2")) / c("fwd b2"),
    "Algorithm-1 floor ÷ base step: (VJP b1 + fwd b2) ÷ fwd b2": (c("VJP b1") + c("fwd b2")) /
      c("fwd b2"),
  };
  if (graphMaps) {
    derived["in-graph maps: selection step ÷ base step (N = 4, loss in line)"] =
      (c("fwd+maps b8") + c("loss ×4")) / c("fwd b8");
    derived["in-graph maps: selection step ÷ base step (N = 4, loss overlapped)"] =
      Math.max(c("fwd+maps b8"), c("loss ×4")) / c("fwd b8");
    derived["in-graph maps: optimisation step ÷ base step (N = 1)"] = (c("fwd+maps b1") +
      c("loss+grad ×1") + c("VJP from maps b1") + c("fwd b2")) / c("fwd b2");
    derived["in-graph maps, split VJP: optimisation step ÷ base step (N = 1)"] =
      (c("fwd+maps (VJP forward half) b1") + c("loss+grad ×1") + c("VJP backward half b1") +
        c("fwd b2")) / c("fwd b2");
    derived["in-graph maps: Algorithm-1 floor ÷ base step: (VJP from maps b1 + fwd b2) ÷ fwd b2"] =
      (c("VJP from maps b1") + c("fwd b2")) / c("fwd b2");
    derived["maps cost in the forward b8: (fwd+maps − fwd) ÷ fwd"] =
      c("fwd+maps b8") / c("fwd b8") -
      1;
  }
  return { ep, repeats, phases, derived };
}

/** Whole runs: base N = 1 and N = 4, selection N = 4, optimisation N = 1. */
async function endToEnd(ep: ExecutionProvider, steps: number, repeats: number) {
  const model = await loadShapesModel({ session: { executionProviders: [ep] } });
  const common = { seed: 0, steps, guidance: 5, progress: false };
  let scores: number[] = [];
  let optLog: number[] = [];
  const runs = await interleaved(
    {
      "base N=1": () => sampleLatents(model, PROMPT, common),
      "base N=4": () => sampleLatents(model, PROMPT, { ...common, candidates: 4 }),
      "select N=4": async () => {
        scores = (await selectLatent(model, PROMPT, { ...common, candidates: 4 })).scores;
      },
      "optimise N=1": async () => {
        optLog = (await optimiseLatent(model, PROMPT, common)).log.map((s) => s.value[0]);
      },
    },
    repeats,
    1,
  );
  await model.release();
  const c = (k: keyof typeof runs) => runs[k].cpuMs.min;
  const wm = (k: keyof typeof runs) => runs[k].wallMs.median;
  return {
    ep,
    steps,
    guidance: 5,
    runs,
    ratios: {
      "select N=4 ÷ base N=4": c("select N=4") / c("base N=4"),
      "optimise ÷ base N=1": c("optimise N=1") / c("base N=1"),
      "select N=4 ÷ base N=4 (wall, medians)": wm("select N=4") / wm("base N=4"),
      "optimise ÷ base N=1 (wall, medians)": wm("optimise N=1") / wm("base N=1"),
    },
    selectScores: scores,
    optimiseLoss: optLog,
  };
}

/** Random Q/K of one SD 1.5-scale self tap and one cross tap. */
export function sdTaps(seed = 1): AttentionTap[] {
  const heads = 8, side = 64, d = 40, l = 77;
  const rnd = mulberry32(seed);
  const g = (shape: number[]) => {
    const v = gaussian(rnd, shape.reduce((a, b) => a * b, 1));
    return tensor(shape, v);
  };
  const n = side * side;
  return [
    { kind: "self", q: g([heads, n, d]), k: g([heads, n, d]), size: [side, side] },
    { kind: "cross", q: g([heads, n, d]), k: g([heads, l, d]), size: [side, side] },
  ];
}

/** onnxruntime's MatMul → Softmax → ReduceMean (over heads) for one tap's shapes. */
export function ortReferenceGraph(heads: number, nq: number, nk: number, d: number): Uint8Array {
  return encodeModel(onnxModel({
    inputs: [valueInfo("q", [heads, nq, d]), valueInfo("k", [heads, nk, d])],
    outputs: [valueInfo("p", [nq, nk])],
    nodes: [
      node("Transpose", ["k"], ["kt"], { perm: [0, 2, 1] }),
      node("MatMul", ["q", "kt"], ["s"]),
      node("Mul", ["s", "scale"], ["ss"]),
      node("Softmax", ["ss"], ["pr"], { axis: -1 }),
      node("ReduceMean", ["pr"], ["p"], { axes: [0], keepdims: 0 }),
    ],
    initializers: [
      initializer("scale", [], [1 / Math.sqrt(d)]),
    ],
    opset: 17,
  }));
}

/** attnkit's map path against onnxruntime's reference on one SD-scale self + cross tap. */
async function sdTap(ep: ExecutionProvider, repeats: number) {
  // On the WebGPU EP the reference runs on the GPU, and so does attnkit's map path (WGSL).
  const gpu = ep === "webgpu";
  const taps = sdTaps();
  const sessions = await Promise.all(taps.map((t) => {
    const [h, nq, d] = t.q.shape;
    return createSession(ortReferenceGraph(h, nq, t.k.shape[1], d), {
      executionProviders: [ep],
      threads: 1,
      source: `${t.kind} reference`,
    });
  }));
  const ortRun = async () => {
    for (const [i, t] of taps.entries()) {
      const r = await sessions[i].run({
        q: new ort.Tensor("float32", t.q.data, [...t.q.shape]),
        k: new ort.Tensor("float32", t.k.data, [...t.k.shape]),
      });
      (r.p as { dispose?: () => void }).dispose?.();
    }
  };
  const phases = await interleaved(
    {
      "onnxruntime MatMul→Softmax→ReduceMean (self + cross)": ortRun,
      "attnkit accumulateMaps (self + cross), TypeScript reference": () => accumulateMaps(taps),
      [
        gpu
          ? "attnkit map path: accumulateMapsAuto, gpu (WGSL kernels)"
          : "attnkit map path: accumulateMapsAuto, cpu (onnxruntime row blocks)"
      ]: () => accumulateMapsAuto(taps, { backend: gpu ? "gpu" : "cpu" }),
    },
    repeats,
    1,
  );
  for (const s of sessions) await s.release();
  const [a, b, c] = Object.values(phases) as Phase[];
  return {
    ep,
    repeats,
    phases,
    ratio: c.cpuMs.min / a.cpuMs.min,
    referenceRatio: b.cpuMs.min / a.cpuMs.min,
  };
}

function phaseTable(phases: Record<string, Phase>): string[] {
  return [
    "| phase | CPU ms min | median | max | wall ms median | peak RSS MiB | Δpeak MiB |",
    "|---|---:|---:|---:|---:|---:|---:|",
    ...Object.entries(phases).map(([k, p]) =>
      `| ${k} | ${fx(p.cpuMs.min)} | ${fx(p.cpuMs.median)} | ${fx(p.cpuMs.max)} | ${
        fx(p.wallMs.median)
      } | ${fx(p.peakMiB, 0)} | ${fx(p.aboveStartMiB, 0)} |`
    ),
  ];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      label: { type: "string", default: "after" },
      steps: { type: "string", default: "20" },
      repeats: { type: "string", default: "5" },
      ep: { type: "string", default: "node" },
      "no-sd": { type: "boolean", default: false },
      "no-e2e": { type: "boolean", default: false },
      "no-breakdown": { type: "boolean", default: false },
    },
  });
  ort.env.logLevel = "error";
  const ep = values.ep as ExecutionProvider;
  const repeats = Number(values.repeats);
  const load = loadAverage();
  const started = new Date().toISOString();
  const bd = values["no-breakdown"] ? undefined : await breakdown(ep, repeats);
  console.error("breakdown done");
  const e2e = values["no-e2e"] ? undefined : await endToEnd(ep, Number(values.steps), 3);
  console.error("end to end done");
  const sd = values["no-sd"] ? undefined : await sdTap(ep, Math.min(repeats, 3));
  const md = [
    `# Speed (${values.label})`,
    "",
    `Run ${started} with \`deno run -A bench/speed.ts --label ${values.label}\` (Deno ${Deno.version.deno}, ` +
    `${navigator.hardwareConcurrency} CPU threads shared with other jobs, load average at start ${load}). ` +
    `Execution provider: ${ep}${
      ep === "webgpu" ? "" : ", one thread"
    }. CPU ms = process user + system time per call, minimum ` +
    `over ${repeats} interleaved rounds after warm-up (median and maximum beside it show the noise).`,
    "",
    ...(bd
      ? [
        `## Per-step breakdown, embedded model (prompt "${PROMPT}", t = ${T})`,
        "",
        ...phaseTable(bd.phases),
        "",
        "| derived (CPU-time minima) | value |",
        "|---|---:|",
        ...Object.entries(bd.derived).map(([k, v]) => `| ${k} | ${fx(v, 2)} |`),
        "",
      ]
      : []),
    ...(e2e
      ? [
        `## Whole runs (${e2e.steps} DDIM steps, guidance ${e2e.guidance}, seed 0)`,
        "",
        ...phaseTable(e2e.runs),
        "",
        "| ratio | value |",
        "|---|---:|",
        ...Object.entries(e2e.ratios).map(([k, v]) => `| ${k} | ${fx(v, 2)} |`),
        ...Object.entries(bd?.derived ?? {}).filter(([k]) => k.includes("floor")).map((
          [k, v],
        ) => `| ${k} (from the breakdown) | ${fx(v, 2)} |`),
        "",
      ]
      : []),
    ...(sd
      ? [
        "## One SD 1.5-scale self + cross tap (64×64, 8 heads, d = 40, L = 77, random Q/K)",
        "",
        ...phaseTable(sd.phases),
        "",
        `attnkit's map path ÷ onnxruntime (CPU-time minima): **${fx(sd.ratio, 2)}×** ` +
        `(the TypeScript reference: ${fx(sd.referenceRatio, 2)}×)`,
        "",
      ]
      : []),
  ].join("\n");
  const dir = new URL("./results/", import.meta.url);
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(new URL(`speed_${values.label}.md`, dir), md);
  await Deno.writeTextFile(
    new URL(`speed_${values.label}.json`, dir),
    JSON.stringify({ started, load, breakdown: bd, endToEnd: e2e, sdTap: sd }, null, 2) + "\n",
  );
  console.log(md);
}

if (import.meta.main) await main();
