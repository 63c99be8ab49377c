/**
 * Kernel speed for attnkit's heavy attention maths, CPU reference against WGSL kernel, at
 * Stable Diffusion 1.5 scale: a 64×64 latent (4096 tokens), 16 attention blocks (5 at 64×64,
 * 5 at 32×32, 5 at 16×16, 1 at 8×8), each with a self and a cross tap, 8 heads, head dims
 * 40/80/160/160, 77 text tokens, on random Q and K.
 *
 * Measured per call (median of the repeats, after one warm-up call that also compiles the GPU
 * pipelines): attention-map accumulation (self + cross), SA·CA propagation, column
 * binarisation, min-max normalisation, K-means (N = 4 on ~1000 foreground pixels) and all-pairs
 * MPO. GPU times are wall-clock per call including upload and read-back. Also: peak resident
 * memory (Deno.memoryUsage, sampled after every call), the bytes each kernel must read and
 * write (inputs + outputs: a roofline-style lower bound on its memory traffic) and the
 * effective bandwidth that implies.
 *
 * On a software (fallback) adapter the GPU column runs only at a reduced scale (a 16×16 latent,
 * same layer structure), since it is ~100× slower than the TypeScript loops there; the CPU runs
 * that scale too so the two sit side by side.
 *
 * Run: `deno run -A bench/kernels.ts [--quick] [--no-sd]`. Writes bench/results/kernels.md and
 * bench/results/kernels.json.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { runCli } from "../lib/cli.ts";
import { accumulateMapsGpu } from "../kernels/accumulate_maps.ts";
import { adapterReport, getDevice } from "../kernels/backend.ts";
import { binariseColumnsGpu } from "../kernels/binarise_columns.ts";
import { kmeansGpu } from "../kernels/kmeans.ts";
import { minMaxGpu } from "../kernels/min_max.ts";
import { mpoPairs, mpoPairsGpu } from "../kernels/mpo.ts";
import { propagateGpu } from "../kernels/propagate.ts";
import { accumulateMaps } from "../lib/attention/accumulate.ts";
import { minMax } from "../lib/attention/normalise.ts";
import type { AttentionMaps, AttentionTap } from "../lib/attention/types.ts";
import { binariseColumns } from "../lib/isac/binarise.ts";
import { kmeans } from "../lib/isac/kmeans.ts";
import { propagate } from "../lib/isac/propagate.ts";
import { gaussian, mulberry32 } from "../lib/random.ts";
import { type Tensor, tensor } from "../lib/tensor.ts";

/** One layer group of the model being imitated. */
interface LayerGroup {
  readonly count: number;
  readonly side: number;
  readonly d: number;
}

/** A problem size the benchmark runs at. */
interface Scale {
  readonly name: string;
  readonly side: number;
  readonly groups: readonly LayerGroup[];
  readonly heads: number;
  readonly textLength: number;
  readonly foreground: number;
  readonly clusters: number;
  readonly repeats: number;
}

const SD15: Scale = {
  name: "SD 1.5 (64x64 latent)",
  side: 64,
  groups: [
    { count: 5, side: 64, d: 40 },
    { count: 5, side: 32, d: 80 },
    { count: 5, side: 16, d: 160 },
    { count: 1, side: 8, d: 160 },
  ],
  heads: 8,
  textLength: 77,
  foreground: 1024,
  clusters: 4,
  repeats: 1,
};

const REDUCED: Scale = {
  name: "reduced (16x16 latent)",
  side: 16,
  groups: [
    { count: 5, side: 16, d: 40 },
    { count: 5, side: 8, d: 80 },
    { count: 5, side: 4, d: 160 },
    { count: 1, side: 2, d: 160 },
  ],
  heads: 8,
  textLength: 77,
  foreground: 64,
  clusters: 4,
  repeats: 3,
};

const QUICK: Scale = { ...REDUCED, name: "quick (16x16 latent)", repeats: 1 };

/** One benchmark figure. */
interface Row {
  scale: string;
  kernel: string;
  backend: "cpu" | "gpu";
  msPerCall: number;
  bytes: number;
  flops: number;
  peakRssMiB: number;
  note: string;
}

function makeTaps(s: Scale, seed: number): AttentionTap[] {
  const rng = mulberry32(seed);
  const taps: AttentionTap[] = [];
  for (const g of s.groups) {
    for (let i = 0; i < g.count; i++) {
      const n = g.side * g.side;
      for (const kind of ["self", "cross"] as const) {
        const nk = kind === "self" ? n : s.textLength;
        taps.push({
          kind,
          q: tensor([s.heads, n, g.d], gaussian(rng, s.heads * n * g.d)),
          k: tensor([s.heads, nk, g.d], gaussian(rng, s.heads * nk * g.d)),
          size: [g.side, g.side],
        });
      }
    }
  }
  return taps;
}

/**
 * K-means features shaped like ISAC's: `clusters` square blobs of foreground pixels, each row
 * the pixel's affinity to every foreground pixel (higher within its blob) plus x, y in [−1, 1].
 */
function clusterFeatures(s: Scale, seed: number): Tensor {
  const rng = mulberry32(seed);
  const per = Math.floor(s.foreground / s.clusters);
  const side = Math.max(1, Math.floor(Math.sqrt(per)));
  const pixels: Array<[number, number, number]> = [];
  for (let c = 0; c < s.clusters; c++) {
    const ox = (c % 2) * (s.side / 2);
    const oy = Math.floor(c / 2) * (s.side / 2);
    for (let i = 0; i < side * side; i++) {
      pixels.push([ox + (i % side), oy + Math.floor(i / side), c]);
    }
  }
  const f = pixels.length;
  const dim = f + 2;
  const data = new Float32Array(f * dim);
  for (let i = 0; i < f; i++) {
    for (let j = 0; j < f; j++) {
      const same = pixels[i][2] === pixels[j][2];
      data[i * dim + j] = (same ? 1 / per : 0.1 / f) * (0.8 + 0.4 * rng());
    }
    data[i * dim + f] = (2 * pixels[i][0]) / (s.side - 1) - 1;
    data[i * dim + f + 1] = (2 * pixels[i][1]) / (s.side - 1) - 1;
  }
  return tensor([f, dim], data);
}

function softMasks(count: number, pixels: number, seed: number): Tensor {
  const rng = mulberry32(seed);
  const data = new Float32Array(count * pixels);
  for (let i = 0; i < data.length; i++) data[i] = rng();
  return tensor([count, pixels], data);
}

let peakRss = 0;
function sampleMemory(): number {
  const rss = Deno.memoryUsage().rss;
  peakRss = Math.max(peakRss, rss);
  return rss;
}

async function timeCall(repeats: number, fn: () => unknown, warmUp: boolean): Promise<number> {
  if (warmUp) {
    await fn();
    sampleMemory();
  }
  const times: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
    sampleMemory();
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

function tapBytes(taps: readonly AttentionTap[]): number {
  let b = 0;
  for (const t of taps) b += (t.q.data.length + t.k.data.length) * 4;
  return b;
}

function tapFlops(taps: readonly AttentionTap[]): number {
  // One q·k multiply-add pass for the row statistics and one for the accumulation.
  let f = 0;
  for (const t of taps) f += 2 * 2 * t.q.shape[0] * t.q.shape[1] * t.k.shape[1] * t.q.shape[2];
  return f;
}

async function runScale(
  s: Scale,
  backends: ReadonlyArray<"cpu" | "gpu">,
  device: GPUDevice | null,
  note: string,
): Promise<Row[]> {
  const rows: Row[] = [];
  const taps = makeTaps(s, 1);
  const hw = s.side * s.side;
  const L = s.textLength;
  let maps: AttentionMaps | undefined;
  const add = (kernel: string, backend: "cpu" | "gpu", ms: number, bytes: number, flops = 0) => {
    const row: Row = {
      scale: s.name,
      kernel,
      backend,
      msPerCall: ms,
      bytes,
      flops,
      peakRssMiB: peakRss / 2 ** 20,
      note: backend === "gpu" ? note : "",
    };
    rows.push(row);
    console.error(
      `  ${s.name} | ${kernel} | ${backend}: ${ms.toFixed(1)} ms per call` +
        ` (${(bytes / 2 ** 20).toFixed(1)} MiB touched)`,
    );
  };
  for (const backend of backends) {
    const gpu = backend === "gpu" ? device! : null;
    // A single CPU repeat at full scale takes minutes; its warm-up would double that for a JIT
    // effect well under the noise. GPU calls always warm up (pipeline compilation).
    const warm = gpu !== null || s.repeats > 1;
    const time = (repeats: number, fn: () => unknown) => timeCall(repeats, fn, warm);
    const accBytes = tapBytes(taps) + (hw * hw + hw * L) * 4;
    const accMs = await time(s.repeats, async () => {
      maps = gpu ? await accumulateMapsGpu(taps, gpu) : accumulateMaps(taps);
    });
    add("attention maps (self + cross)", backend, accMs, accBytes, tapFlops(taps));
    const m = maps!;
    const propBytes = (hw * hw + 2 * hw * L) * 4;
    let prop: Tensor | undefined;
    const propMs = await time(s.repeats, async () => {
      prop = gpu ? await propagateGpu(m.self, m.cross, gpu) : propagate(m.self, m.cross);
    });
    add("SA·CA propagation", backend, propMs, propBytes, 2 * hw * hw * L);
    const p = prop!;
    const binMs = await time(
      s.repeats,
      () => gpu ? binariseColumnsGpu(p, gpu) : binariseColumns(p),
    );
    add("column binarisation", backend, binMs, hw * L * 5);
    const mmMs = await time(s.repeats, () => gpu ? minMaxGpu(m.self, gpu) : minMax(m.self));
    add("min-max normalisation (self map)", backend, mmMs, hw * hw * 8);
    const feats = clusterFeatures(s, 2);
    const [f, dim] = feats.shape;
    let iters = 0;
    const kmMs = await time(s.repeats, async () => {
      const r = gpu
        ? await kmeansGpu(feats, s.clusters, { seed: 0 }, gpu)
        : kmeans(feats, s.clusters, { seed: 0 });
      iters = r.iterations;
    });
    add(
      `K-means (N=${s.clusters}, F=${f}, D=${dim}, ${iters} iterations)`,
      backend,
      kmMs,
      (f * dim + s.clusters * dim + f) * 4,
      iters * 3 * f * dim * s.clusters,
    );
    const masks = softMasks(s.clusters, hw, 3);
    const pairs = (s.clusters * (s.clusters - 1)) / 2;
    const mpoMs = await time(s.repeats, () => gpu ? mpoPairsGpu(masks, gpu) : mpoPairs(masks));
    add(
      `MPO all pairs (N=${s.clusters}, ${hw} pixels)`,
      backend,
      mpoMs,
      masks.data.length * 4 + pairs * 8,
    );
  }
  return rows;
}

function fmtBytes(b: number): string {
  return b >= 2 ** 20 ? `${(b / 2 ** 20).toFixed(1)} MiB` : `${(b / 1024).toFixed(1)} KiB`;
}

function toMarkdown(rows: readonly Row[], header: string[]): string {
  const lines = [...header, ""];
  const scales = [...new Set(rows.map((r) => r.scale))];
  for (const scale of scales) {
    lines.push(`### ${scale}`, "");
    lines.push(
      "| kernel | bytes touched (in+out) | GFLOP | CPU ms/call | CPU GB/s | GPU ms/call | GPU GB/s | CPU/GPU | peak RSS MiB |",
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    );
    const kernels = [...new Set(rows.filter((r) => r.scale === scale).map((r) => r.kernel))];
    for (const kernel of kernels) {
      const cpu = rows.find((r) => r.scale === scale && r.kernel === kernel && r.backend === "cpu");
      const gpu = rows.find((r) => r.scale === scale && r.kernel === kernel && r.backend === "gpu");
      const bytes = (cpu ?? gpu)!.bytes;
      const gflop = (cpu ?? gpu)!.flops / 1e9;
      const gbs = (r?: Row) => (r ? (bytes / (r.msPerCall / 1000) / 1e9).toFixed(2) : "–");
      const ms = (r?: Row) => (r ? r.msPerCall.toFixed(1) : "–");
      const ratio = cpu && gpu ? (cpu.msPerCall / gpu.msPerCall).toFixed(2) : "–";
      const rss = Math.max(cpu?.peakRssMiB ?? 0, gpu?.peakRssMiB ?? 0).toFixed(0);
      lines.push(
        `| ${kernel} | ${fmtBytes(bytes)} | ${gflop > 0 ? gflop.toFixed(2) : "–"} | ${ms(cpu)} | ${
          gbs(cpu)
        } | ${ms(gpu)} | ${gbs(gpu)} | ${ratio} | ${rss} |`,
      );
    }
    lines.push("");
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      quick: { type: "boolean", default: false },
      "no-sd": { type: "boolean", default: false },
    },
  });
  const report = await adapterReport();
  const device = report.available ? await getDevice() : null;
  const realGpu = report.available && !report.fallback;
  const scales: Array<{ scale: Scale; backends: Array<"cpu" | "gpu">; note: string }> = [];
  const gpuNote = report.fallback
    ? "software adapter: correctness only, ~100x slower than a GPU"
    : "";
  if (values.quick) {
    scales.push({ scale: QUICK, backends: device ? ["cpu", "gpu"] : ["cpu"], note: gpuNote });
  } else {
    if (!values["no-sd"]) {
      scales.push({ scale: SD15, backends: realGpu ? ["cpu", "gpu"] : ["cpu"], note: gpuNote });
    }
    if (!realGpu) {
      scales.push({ scale: REDUCED, backends: device ? ["cpu", "gpu"] : ["cpu"], note: gpuNote });
    }
  }
  const started = new Date().toISOString();
  const load = (() => {
    try {
      return Deno.loadavg().map((x) => x.toFixed(2)).join(", ");
    } catch {
      return "n/a";
    }
  })();
  const rows: Row[] = [];
  for (const { scale, backends, note } of scales) {
    console.error(`${scale.name}: ${backends.join(" + ")}`);
    rows.push(...await runScale(scale, backends, device, note));
  }
  const header = [
    "# Kernel benchmark",
    "",
    `Run ${started} with \`deno run -A bench/kernels.ts${values.quick ? " --quick" : ""}\`` +
    ` (Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} CPU threads, load average at` +
    ` start ${load}).`,
    `WebGPU adapter: ${report.available ? report.description : "none"}` +
    `${report.fallback ? " (software fallback adapter)" : ""}.`,
    realGpu
      ? "CPU and GPU both run at every scale."
      : report.available
      ? "The GPU column runs only at the reduced scale: the adapter is a software one, " +
        "correct but about 100x slower than a real GPU, so its times say nothing about GPU speed."
      : "No WebGPU adapter: CPU figures only.",
    "",
    "Times are the median wall-clock time per call after one warm-up call; GPU times include " +
    "upload and read-back. Bytes touched = input + output bytes, the least memory traffic a " +
    "kernel can have; GB/s = those bytes / time (attention maps are compute-bound: " +
    "2 × heads × Nq × Nk × d multiply-adds per tap, not a bandwidth figure). Peak RSS is " +
    "sampled after each call and grows over the run. GFLOP counts multiply-adds as 2 " +
    "(attention maps: two q·k passes per tap; K-means: distances and means per iteration).",
  ];
  const md = toMarkdown(rows, header);
  const dir = new URL("./results/", import.meta.url);
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(new URL("kernels.md", dir), md + "\n");
  await Deno.writeTextFile(
    new URL("kernels.json", dir),
    JSON.stringify({ started, load, adapter: report, rows }, null, 2) + "\n",
  );
  console.log(md);
}

if (import.meta.main) await runCli(main);
