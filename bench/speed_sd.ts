/**
 * One Stable Diffusion 1.5-scale step of ISAC's map work against the attention work of that
 * step's forward pass, on a random-weight SD-shaped attention stack (no hub weights here):
 * 16 transformer-style blocks (5 at 64×64 tokens, 5 at 32×32, 5 at 16×16, 1 at 8×8; 8 heads of
 * d = 40/80/160/160; each a self-attention and a cross-attention on a 77×768 context, with
 * residuals), laid out like the diffusers export (Q/K/V projections, reshape to heads,
 * MatMul → Softmax → MatMul, output projection). Blocks of one group share their weights, which
 * changes no timing and keeps the model small.
 *
 * Measured, one thread, process CPU time (min of the rounds):
 * - forward: the stack alone (the step's attention work);
 * - forward + maps: the same graph with ISAC's maps emitted inside it (lib/hooks/maps_graph.ts);
 * - ISAC loss with its gradient on the 4096 × 4096 self and 4096 × 77 cross maps;
 * - with `--vjp`: the VJP from the maps to the stack's inputs (the backward to the latents
 *   would pass through these layers).
 *
 *   deno run -A bench/speed_sd.ts [--label after] [--repeats 2] [--vjp]
 *
 * Writes bench/results/speed_sd_<label>.md and .json.
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { AttentionMapsGrad } from "../lib/attention/types.ts";
import { findAttention } from "../lib/hooks/find.ts";
import { mapsGraph } from "../lib/hooks/maps_graph.ts";
import { isacLoss } from "../lib/isac/loss.ts";
import { vjpGraph } from "../lib/onnx/autodiff/vjp.ts";
import { initializer, model, node, valueInfo } from "../lib/onnx/build.ts";
import { createSession, type ExecutionProvider, ort, type OrtTensor } from "../lib/onnx/ort.ts";
import { encodeModel } from "../lib/onnx/proto.ts";
import type { Model, NodeProto, TensorProto } from "../lib/onnx/types.ts";
import { gaussian, mulberry32 } from "../lib/random.ts";
import { tensor } from "../lib/tensor.ts";
import { fx, interleaved, loadAverage, type Phase } from "./speed_support.ts";

const HEADS = 8;
const TEXT = 77;
const TEXT_DIM = 768;
const GROUPS = [
  { count: 5, side: 64, d: 40 },
  { count: 5, side: 32, d: 80 },
  { count: 5, side: 16, d: 160 },
  { count: 1, side: 8, d: 160 },
] as const;

/** The random-weight attention stack, its input names and the context input. */
export function attentionStack(seed = 0): { model: Model; inputs: string[]; context: string } {
  const rng = mulberry32(seed);
  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [];
  const weight = (name: string, rows: number, cols: number) => {
    const w = gaussian(rng, rows * cols).map((v) => v / Math.sqrt(rows));
    inits.push(initializer(name, [rows, cols], w));
    return name;
  };
  const shape = (name: string, dims: number[]) => {
    inits.push(initializer(name, [dims.length], new BigInt64Array(dims.map(BigInt))));
    return name;
  };
  let uid = 0;
  const t = (base: string) => `${base}_${uid++}`;
  const op = (type: string, inputs: string[], attrs: Record<string, unknown> = {}) => {
    const out = t(type.toLowerCase());
    nodes.push(node(type, inputs, [out], attrs as never));
    return out;
  };
  const heads = (x: string, g: string, d: number) => {
    const r = op("Reshape", [x, shape(t(`${g}/split`), [1, -1, HEADS, d])]);
    return op("Transpose", [r], { perm: [0, 2, 1, 3] });
  };
  const attention = (
    x: string,
    kv: string,
    g: string,
    d: number,
    wq: string,
    wk: string,
    wv: string,
    wo: string,
  ) => {
    const q = heads(op("MatMul", [x, wq]), g, d);
    const k = heads(op("MatMul", [kv, wk]), g, d);
    const v = heads(op("MatMul", [kv, wv]), g, d);
    const kt = op("Transpose", [k], { perm: [0, 1, 3, 2] });
    const s = op("Mul", [op("MatMul", [q, kt]), `${g}/scale`]);
    const p = op("Softmax", [s], { axis: -1 });
    const o = op("Transpose", [op("MatMul", [p, v])], { perm: [0, 2, 1, 3] });
    const merged = op("Reshape", [o, shape(t(`${g}/merge`), [1, -1, HEADS * d])]);
    return op("Add", [x, op("MatMul", [merged, wo])]);
  };
  const inputs: string[] = [];
  const outputs: string[] = [];
  for (const grp of GROUPS) {
    const g = `g${grp.side}`;
    const c = HEADS * grp.d;
    inits.push(initializer(`${g}/scale`, [], [1 / Math.sqrt(grp.d)]));
    const w = {
      sq: weight(`${g}/sq`, c, c),
      sk: weight(`${g}/sk`, c, c),
      sv: weight(`${g}/sv`, c, c),
      so: weight(`${g}/so`, c, c),
      cq: weight(`${g}/cq`, c, c),
      ck: weight(`${g}/ck`, TEXT_DIM, c),
      cv: weight(`${g}/cv`, TEXT_DIM, c),
      co: weight(`${g}/co`, c, c),
    };
    let x = `x${grp.side}`;
    inputs.push(x);
    for (let b = 0; b < grp.count; b++) {
      x = attention(x, x, g, grp.d, w.sq, w.sk, w.sv, w.so);
      x = attention(x, "encoder_hidden_states", g, grp.d, w.cq, w.ck, w.cv, w.co);
    }
    outputs.push(x);
  }
  return {
    model: model({
      inputs: [
        ...GROUPS.map((grp) => valueInfo(`x${grp.side}`, [1, grp.side * grp.side, HEADS * grp.d])),
        valueInfo("encoder_hidden_states", [1, TEXT, TEXT_DIM]),
      ],
      outputs: outputs.map((o) => valueInfo(o, undefined)),
      nodes,
      initializers: inits,
      opset: 17,
    }),
    inputs,
    context: "encoder_hidden_states",
  };
}

function feeds(seed: number): Record<string, OrtTensor> {
  const rng = mulberry32(seed);
  const f: Record<string, OrtTensor> = {};
  for (const grp of GROUPS) {
    const dims = [1, grp.side * grp.side, HEADS * grp.d];
    f[`x${grp.side}`] = new ort.Tensor("float32", gaussian(rng, dims[1] * dims[2]), dims);
  }
  f.encoder_hidden_states = new ort.Tensor(
    "float32",
    gaussian(rng, TEXT * TEXT_DIM),
    [1, TEXT, TEXT_DIM],
  );
  return f;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      label: { type: "string", default: "after" },
      repeats: { type: "string", default: "2" },
      ep: { type: "string", default: "node" },
      vjp: { type: "boolean", default: false },
    },
  });
  ort.env.logLevel = "error";
  const ep = values.ep as ExecutionProvider;
  const load = loadAverage();
  const started = new Date().toISOString();
  const stack = attentionStack();
  const cores = findAttention(stack.model, { conditioning: [stack.context] });
  const layers = cores.map((_, i) => {
    let at = Math.floor(i / 2);
    for (const grp of GROUPS) {
      if (at < grp.count) return { size: [grp.side, grp.side] as [number, number], heads: HEADS };
      at -= grp.count;
    }
    throw new Error("layer count");
  });
  const built = mapsGraph(stack.model, cores, layers);
  const so = { executionProviders: [ep], threads: 1 };
  const plain = await createSession(encodeModel(stack.model), { ...so, source: "stack" });
  const withMaps = await createSession(encodeModel(built.model), { ...so, source: "stack+maps" });
  const f = feeds(1);
  const outNames = stack.model.graph.output.map((o) => o.name);
  let maps = { self: tensor([0, 0]), cross: tensor([0, 0]), size: built.size };
  const readMaps = async () => {
    const r = await withMaps.run(f, [...outNames, built.self!, built.cross!]);
    const s = r[built.self!], c = r[built.cross!];
    maps = {
      self: tensor((s.dims as number[]).slice(1), s.data as Float32Array),
      cross: tensor((c.dims as number[]).slice(1), c.data as Float32Array),
      size: built.size,
    };
  };
  await readMaps();
  const spec = { tokens: [2, 5], counts: [2, 1], seed: 0 };
  const weights = { ins: 1, cls: 1 };
  let grad: AttentionMapsGrad = isacLoss(maps, spec, weights).grad;
  const phases = await interleaved(
    {
      "forward (attention stack)": () => plain.run(f),
      "forward + in-graph maps": readMaps,
      "ISAC loss + d/dmaps (4096² self, 4096×77 cross)": () => {
        grad = isacLoss(maps, spec, weights).grad;
      },
    } as Record<string, () => unknown>,
    Number(values.repeats),
    2,
  );
  await plain.release();
  await withMaps.release();
  if (values.vjp) {
    // Alone, after the forward sessions are released: the VJP keeps every block's activations.
    const v = vjpGraph(built.model, { wrt: stack.inputs, taps: [built.self!, built.cross!] });
    const s = await createSession(encodeModel(v.model), { ...so, source: "stack maps VJP" });
    const cot = (t: typeof grad.self) => new ort.Tensor("float32", t!.data, [1, ...t!.shape]);
    Object.assign(
      phases,
      await interleaved(
        {
          "VJP from the maps to the stack inputs (run alone)": () =>
            s.run({
              ...f,
              [v.cotangentInputs[0]]: cot(grad.self),
              [v.cotangentInputs[1]]: cot(grad.cross),
            }, v.gradOutputs),
        },
        Math.min(2, Number(values.repeats)),
        1,
      ),
    );
    await s.release();
  }
  const c = (k: string) => phases[k]?.cpuMs.min ?? NaN;
  const fwd = c("forward (attention stack)");
  const mapsCost = c("forward + in-graph maps") - fwd;
  const loss = c("ISAC loss + d/dmaps (4096² self, 4096×77 cross)");
  const ratios: Record<string, number> = {
    "maps (in-graph extra) ÷ forward": mapsCost / fwd,
    "maps + ISAC loss + its backward to the maps ÷ forward": (mapsCost + loss) / fwd,
  };
  if (values.vjp) {
    ratios["maps + loss + its backward + VJP to the stack inputs ÷ forward"] =
      (mapsCost + loss + c("VJP from the maps to the stack inputs (run alone)")) / fwd;
  }
  const md = [
    `# SD 1.5-scale step: maps, ISAC loss and backward against the forward's attention (${values.label})`,
    "",
    `Run ${started} with \`deno run -A bench/speed_sd.ts --label ${values.label}${
      values.vjp ? " --vjp" : ""
    }\` (Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} CPU threads shared with other jobs, ` +
    `load average at start ${load}). onnxruntime ${ep} EP, one thread. Random-weight SD-shaped ` +
    "attention stack: 16 blocks (5 at 64×64, 5 at 32×32, 5 at 16×16, 1 at 8×8 tokens), 8 heads, " +
    "d = 40/80/160/160, a self and a cross attention each (77×768 context). CPU ms = process user " +
    `+ system time, minimum over ${values.repeats} rounds after two warm-up rounds (V8 tiers the loss up over its first calls).`,
    "",
    "| phase | CPU ms min | median | max | wall ms median | peak RSS MiB | Δpeak MiB |",
    "|---|---:|---:|---:|---:|---:|---:|",
    ...Object.entries(phases).map(([k, p]: [string, Phase]) =>
      `| ${k} | ${fx(p.cpuMs.min)} | ${fx(p.cpuMs.median)} | ${fx(p.cpuMs.max)} | ${
        fx(p.wallMs.median)
      } | ${fx(p.peakMiB, 0)} | ${fx(p.aboveStartMiB, 0)} |`
    ),
    "",
    "| ratio (CPU-time minima) | value |",
    "|---|---:|",
    ...Object.entries(ratios).map(([k, v]) => `| ${k} | ${fx(v, 2)} |`),
    "",
  ].join("\n");
  const dir = new URL("./results/", import.meta.url);
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(new URL(`speed_sd_${values.label}.md`, dir), md);
  await Deno.writeTextFile(
    new URL(`speed_sd_${values.label}.json`, dir),
    JSON.stringify({ started, load, ep, phases, ratios }, null, 2) + "\n",
  );
  console.log(md);
}

if (import.meta.main) await main();
