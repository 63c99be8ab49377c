/**
 * The in-graph maps (lib/hooks/maps_graph.ts through the denoiser) against the CPU reference:
 * the embedded UNet's maps made inside its graph equal `accumulateMaps` over its Q/K taps, and
 * the map-graph VJP equals the Q/K route (`accumulateMapsBackward` + the tap VJP) for random map
 * cotangents; selection and optimisation through both routes agree end to end. Both routes
 * share only the model; the reference maths is the CPU code.
 */
import assert from "node:assert/strict";
import { accumulateMaps } from "../lib/attention/accumulate.ts";
import { accumulateMapsBackward } from "../lib/attention/accumulate_backward.ts";
import { AttnkitError } from "../lib/errors.ts";
import { findAttention } from "../lib/hooks/find.ts";
import { mapsGraph } from "../lib/hooks/maps_graph.ts";
import { tapAttention } from "../lib/hooks/tap.ts";
import { initializer, model as onnxModel, node, valueInfo } from "../lib/onnx/build.ts";
import { createSession } from "../lib/onnx/ort.ts";
import { encodeModel } from "../lib/onnx/proto.ts";
import { loadShapesModel } from "../lib/models/shapes.ts";
import { optimiseLatent } from "../lib/control/optimise_latent.ts";
import { selectLatent } from "../lib/control/select_latent.ts";
import { ort } from "../lib/onnx/ort.ts";
import { decodeModel } from "../lib/onnx/proto.ts";
import { gaussian, mulberry32 } from "../lib/random.ts";
import { initialLatents } from "../lib/runtime/sample.ts";
import { type Tensor, tensor } from "../lib/tensor.ts";

ort.env.logLevel = "error";

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

async function setup() {
  const model = await loadShapesModel();
  const cond = await model.encodeText(["two red circles", "a blue square and a green triangle"]);
  const x = initialLatents(model.info.latentShape, 3, 2);
  return { model, cond, x };
}

Deno.test("maps graph: the embedded UNet's in-graph maps equal accumulateMaps over its taps", async () => {
  const { model, cond, x } = await setup();
  try {
    const viaTaps = await model.denoise(x, 501, cond, { taps: true });
    const inGraph = await model.denoise(x, 501, cond, { maps: true });
    const maps = inGraph.maps!;
    assert.equal(maps.length, 2, "two items' maps");
    assert.equal(inGraph.taps, undefined, "no taps when only maps were asked");
    assert.ok(maxAbsDiff(inGraph.out.data, viaTaps.out.data) < 1e-5, "same noise prediction");
    for (let i = 0; i < 2; i++) {
      const ref = accumulateMaps(viaTaps.taps![i]);
      const got = maps[i];
      assert.deepEqual(got.size, ref.size);
      assert.deepEqual(got.self.shape, ref.self.shape);
      assert.deepEqual(got.cross.shape, ref.cross.shape);
      assert.ok(maxAbsDiff(got.self.data, ref.self.data) < 1e-6 * 256 * maxAbs(ref.self.data));
      assert.ok(maxAbsDiff(got.cross.data, ref.cross.data) < 1e-5 * maxAbs(ref.cross.data));
      // Rows are distributions: a check independent of the reference.
      const hw = ref.size[0] * ref.size[1];
      for (let p = 0; p < hw; p += 17) {
        let s = 0;
        for (let c = 0; c < hw; c++) s += got.self.data[p * hw + c];
        assert.ok(Math.abs(s - 1) < 1e-4, `self row ${p} sums to ${s}`);
      }
    }
    // Items are independent: a batch of one gives item 0's maps.
    const one = await model.denoise(
      tensor([1, ...x.shape.slice(1)], x.data.slice(0, x.data.length / 2)),
      501,
      tensor([1, ...cond.shape.slice(1)], cond.data.slice(0, cond.data.length / 2)),
      { maps: true },
    );
    assert.ok(maxAbsDiff(one.maps![0].cross.data, maps[0].cross.data) < 1e-5);
  } finally {
    await model.release();
  }
});

Deno.test("maps graph: the map-graph VJP equals the Q/K route for random map cotangents", async () => {
  const { model, cond, x } = await setup();
  try {
    const res = await model.denoise(x, 301, cond, { taps: true });
    const rng = mulberry32(11);
    const mapGrads = res.taps!.map((taps) => {
      const m = accumulateMaps(taps);
      return {
        self: tensor(m.self.shape, gaussian(rng, m.self.data.length)),
        cross: tensor(m.cross.shape, gaussian(rng, m.cross.data.length)),
      };
    });
    // Item 1 has a cross cotangent only: an absent part counts as zero on both routes.
    const grads = [mapGrads[0], { cross: mapGrads[1].cross }];
    const tapGrads = res.taps!.map((taps, i) => accumulateMapsBackward(taps, grads[i]));
    const ref: Tensor = await model.gradient(x, 301, cond, tapGrads);
    const got = await model.gradientFromMaps!(x, 301, cond, grads);
    assert.deepEqual(got.shape, ref.shape);
    const scale = maxAbs(ref.data);
    assert.ok(scale > 0, "a non-zero gradient");
    const diff = maxAbsDiff(got.data, ref.data);
    assert.ok(diff < 2e-3 * scale, `max |Δ| ${diff} against max |g| ${scale}`);
  } finally {
    await model.release();
  }
});

Deno.test("maps graph: forward and backward halves give the one-piece VJP's gradient", async () => {
  const { model, cond, x } = await setup();
  try {
    const rng = mulberry32(5);
    const ref0 = await model.denoise(x, 401, cond, { maps: true });
    const grads = ref0.maps!.map((m) => ({
      self: tensor(m.self.shape, gaussian(rng, m.self.data.length)),
      cross: tensor(m.cross.shape, gaussian(rng, m.cross.data.length)),
    }));
    // No "grad" forward before: the one-piece VJP recomputes the forward.
    const whole = await model.gradientFromMaps!(x, 401, cond, grads);
    for (let round = 0; round < 2; round++) {
      const fwd = await model.denoise(x, 401, cond, { maps: true, grad: true });
      assert.ok(maxAbsDiff(fwd.out.data, ref0.out.data) < 1e-5, "same noise prediction");
      for (let i = 0; i < 2; i++) {
        assert.ok(maxAbsDiff(fwd.maps![i].self.data, ref0.maps![i].self.data) < 1e-6);
        assert.ok(maxAbsDiff(fwd.maps![i].cross.data, ref0.maps![i].cross.data) < 1e-6);
      }
      const halves = await model.gradientFromMaps!(x, 401, cond, grads);
      const scale = maxAbs(whole.data);
      assert.ok(maxAbsDiff(halves.data, whole.data) < 1e-4 * scale, `round ${round}`);
    }
    // Different tensors than the kept forward: the one-piece VJP runs (and agrees).
    await model.denoise(x, 401, cond, { maps: true, grad: true });
    const again = await model.gradientFromMaps!(tensor(x.shape, x.data.slice()), 401, cond, grads);
    assert.ok(maxAbsDiff(again.data, whole.data) < 1e-4 * maxAbs(whole.data));
  } finally {
    await model.release();
  }
});

Deno.test("maps graph: with a score bias the maps are accumulated from the biased call's taps", async () => {
  const { model, cond, x } = await setup();
  try {
    const plain = await model.denoise(x, 501, cond, { taps: true });
    // Remove text key 0 on every cross layer.
    const bias = plain.taps![0].map((t) => {
      if (t.kind !== "cross") return null;
      const data = new Float32Array(t.k.shape[1]);
      data[0] = -1e4;
      return tensor([1, 1, 1, t.k.shape[1]], data);
    });
    const withTaps = await model.denoise(x, 501, cond, { taps: true, bias });
    const biased = await model.denoise(x, 501, cond, { maps: true, bias });
    assert.equal(biased.taps, undefined);
    assert.ok(maxAbsDiff(biased.out.data, withTaps.out.data) < 1e-6);
    for (let i = 0; i < 2; i++) {
      const ref = accumulateMaps(withTaps.taps![i]);
      assert.ok(maxAbsDiff(biased.maps![i].cross.data, ref.cross.data) < 1e-6);
      assert.ok(maxAbsDiff(biased.maps![i].self.data, ref.self.data) < 1e-6);
    }
  } finally {
    await model.release();
  }
});

Deno.test("maps graph: layer lists that do not fit are refused, naming the argument", async () => {
  const graph = decodeModel(
    await Deno.readFile(new URL("../weights/shapes/unet.onnx", import.meta.url)),
  );
  const cores = findAttention(graph, { conditioning: ["encoder_hidden_states"] });
  assert.throws(
    () => mapsGraph(graph, cores, [{ size: [16, 16], heads: 4 }]),
    (e: unknown) => e instanceof AttnkitError && e.argument === "layers",
  );
  const layers = cores.map(() => ({ size: [16, 16] as [number, number], heads: 4 }));
  layers[2] = { size: [6, 6], heads: 4 };
  assert.throws(
    () => mapsGraph(graph, cores, layers),
    (e: unknown) => e instanceof AttnkitError && e.argument === "layers[2].size",
  );
});

Deno.test("maps graph: selection and optimisation match the Q/K route end to end", async () => {
  const model = await loadShapesModel();
  // The same model without in-graph maps: every map comes from Q/K taps, as before issue 13.
  const viaTaps = { ...model, gradientFromMaps: undefined };
  const prompt = "two red circles and a blue square";
  const opts = { seed: 4, steps: 3, guidance: 4, progress: false };
  try {
    const a = await selectLatent(model, prompt, { ...opts, candidates: 2 });
    const b = await selectLatent(viaTaps, prompt, { ...opts, candidates: 2 });
    assert.equal(a.best, b.best);
    a.perStep.flat().forEach((v, i) => assert.ok(Math.abs(v - b.perStep.flat()[i]) < 1e-4));
    assert.ok(maxAbsDiff(a.latents.data, b.latents.data) < 1e-5);
    const c = await optimiseLatent(model, prompt, opts);
    const d = await optimiseLatent(viaTaps, prompt, opts);
    c.log.forEach((s, i) => assert.ok(Math.abs(s.value[0] - d.log[i].value[0]) < 1e-4));
    const scale = maxAbs(d.latents.data);
    assert.ok(maxAbsDiff(c.latents.data, d.latents.data) < 1e-4 * scale);
  } finally {
    await model.release();
  }
});

/** A tiny graph of independent attention cores, one per (kind, side), in the diffusers layout. */
function tinyAttention(sides: readonly number[], fusedCross = false) {
  const heads = 2, d = 4, c = heads * d, l = 5;
  const rng = mulberry32(21);
  const nodes: ReturnType<typeof node>[] = [];
  const inits = [initializer("scale", [], [1 / Math.sqrt(d)])];
  const split = initializer("split", [4], new BigInt64Array([1n, -1n, BigInt(heads), BigInt(d)]));
  inits.push(split);
  let uid = 0;
  const op = (type: string, inputs: string[], attrs: Record<string, number[] | number> = {}) => {
    const out = `t${uid++}`;
    nodes.push(node(type, inputs, [out], attrs));
    return out;
  };
  const w = (name: string) => {
    inits.push(initializer(name, [c, c], gaussian(rng, c * c)));
    return name;
  };
  const toHeads = (x: string) =>
    op("Transpose", [op("Reshape", [x, "split"])], { perm: [0, 2, 1, 3] });
  const outputs: string[] = [];
  for (const side of sides) {
    for (const kind of ["self", "cross"]) {
      const x = `x${side}`;
      const kv = kind === "self" ? x : "ctx";
      if (fusedCross && kind === "cross") {
        // com.microsoft MultiHeadAttention on [B, N, heads·d]: the head mean comes from tap.ts.
        const q = op("MatMul", [x, w(`q${side}${kind}`)]);
        const k = op("MatMul", [kv, w(`k${side}${kind}`)]);
        const v = op("MatMul", [kv, w(`v${side}${kind}`)]);
        const out = `t${uid++}`;
        nodes.push(
          node("MultiHeadAttention", [q, k, v], [out], { num_heads: heads }, {
            domain: "com.microsoft",
          }),
        );
        outputs.push(out);
        continue;
      }
      const q = toHeads(op("MatMul", [x, w(`q${side}${kind}`)]));
      const k = toHeads(op("MatMul", [kv, w(`k${side}${kind}`)]));
      const v = toHeads(op("MatMul", [kv, w(`v${side}${kind}`)]));
      const s = op("Mul", [
        op("MatMul", [q, op("Transpose", [k], { perm: [0, 1, 3, 2] })]),
        "scale",
      ]);
      outputs.push(op("MatMul", [op("Softmax", [s], { axis: -1 }), v]));
    }
  }
  return {
    model: onnxModel({
      inputs: [
        ...sides.map((s) => valueInfo(`x${s}`, [1, s * s, c])),
        valueInfo("ctx", [1, l, c]),
      ],
      outputs: outputs.map((o) => valueInfo(o, undefined)),
      nodes,
      initializers: inits,
    }),
    feeds: Object.fromEntries([
      ...sides.map((
        s,
      ) => [`x${s}`, new ort.Tensor("float32", gaussian(rng, s * s * c), [1, s * s, c])]),
      ["ctx", new ort.Tensor("float32", gaussian(rng, l * c), [1, l, c])],
    ]),
    heads,
  };
}

async function tinyParity(fusedCross: boolean): Promise<void> {
  const sides = [12, 6, 4];
  const tiny = tinyAttention(sides, fusedCross);
  const cores = findAttention(tiny.model, { conditioning: ["ctx"] });
  assert.equal(cores.length, 6);
  const layers = cores.map((_, i) => ({
    size: [sides[i >> 1], sides[i >> 1]] as [number, number],
    heads: tiny.heads,
  }));
  const built = mapsGraph(tiny.model, cores, layers);
  const tapped = tapAttention(tiny.model, cores, { qk: true });
  const [a, b] = await Promise.all([
    createSession(encodeModel(built.model)),
    createSession(encodeModel(tapped.model)),
  ]);
  const got = await a.run(tiny.feeds, [built.self!, built.cross!]);
  const taps = await b.run(tiny.feeds, tapped.taps.flatMap((t) => [t.q!, t.k!]));
  const ref = accumulateMaps(tapped.taps.map((t, i) => {
    const q = taps[t.q!], k = taps[t.k!];
    return {
      kind: t.kind,
      q: tensor((q.dims as number[]).slice(1), q.data as Float32Array),
      k: tensor((k.dims as number[]).slice(1), k.data as Float32Array),
      size: layers[i].size,
    };
  }));
  assert.ok(maxAbsDiff(got[built.self!].data as Float32Array, ref.self.data) < 1e-6);
  assert.ok(maxAbsDiff(got[built.cross!].data as Float32Array, ref.cross.data) < 1e-6);
  await a.release();
  await b.release();
}

Deno.test("maps graph: three resolutions, one that does not divide the next (12, 6, 4)", () =>
  tinyParity(false));

Deno.test("maps graph: fused MultiHeadAttention cores beside unfused ones", () => tinyParity(true));
