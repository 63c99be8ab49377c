/**
 * Bad-input corpus, model side (issue 10 part A): numbers a model hands in (config values, S4,
 * S5, F14, N19) are type- and range-checked at load with the key named, and numbers crossing the
 * DiffusionModel edge are finite (F11), with the argument or the model file named.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadShapesModel } from "../../lib/models/shapes.ts";
import { loadSd15Model } from "../../lib/models/sd15_model.ts";
import { loadSd15 } from "../../lib/models/sd15.ts";
import { betas } from "../../lib/samplers/schedule.ts";
import { decodeLatents } from "../../lib/runtime/sample.ts";
import { tensor } from "../../lib/tensor.ts";
import { encodeModel } from "../../lib/onnx/proto.ts";
import { initializer, model as buildModel, node, valueInfo } from "../../lib/onnx/build.ts";
import { Corpus, editJson, hfCopy, type JsonObject, shapesCopy } from "./models_support.ts";

const corpus = new Corpus("models_numbers");
type Config = JsonObject;

// --- shapes config.json: each bad value is named by its key, at load ----------------------

const SHAPES_CONFIG: [string, (c: Config) => void, string[]][] = [
  ["S4 latent_size as a string", (c) => (c.latent_size = "16"), ["latent_size", '"16"']],
  ["S5 files missing", (c) => delete c.files, ["files must be an object", "missing"]],
  ["S5 unet_inputs missing", (c) => delete c.unet_inputs, ["unet_inputs must be an object"]],
  ["S5 schedule missing", (c) => delete c.schedule, ["schedule must be an object"]],
  ["S5 text missing", (c) => delete c.text, ["text must be an object"]],
  ["S5 files.unet missing", (c) => delete c.files.unet, ["files.unet", "missing"]],
  ["scale_factor as a string", (c) => (c.scale_factor = "0.7"), ["scale_factor", '"0.7"']],
  ["scale_factor 0", (c) => (c.scale_factor = 0), ["scale_factor", "got 0"]],
  ["scale_factor negative", (c) => (c.scale_factor = -1), ["scale_factor"]],
  ["scale_factor null", (c) => (c.scale_factor = null), ["scale_factor"]],
  ["F14 train_steps 1e10", (c) => (c.schedule.train_steps = 1e10), [
    "schedule.train_steps",
    "10000000000",
  ]],
  ["train_steps 0", (c) => (c.schedule.train_steps = 0), ["schedule.train_steps"]],
  ["train_steps fractional", (c) => (c.schedule.train_steps = 999.5), ["schedule.train_steps"]],
  ["beta_start above beta_end", (c) => (c.schedule.beta_start = 0.5), ["beta_start", "beta_end"]],
  ["beta_end 1.5", (c) => (c.schedule.beta_end = 1.5), ["schedule.beta_end"]],
  ["schedule kind cosine", (c) => (c.schedule.kind = "cosine"), ["schedule.kind", "cosine"]],
  ["prediction x0", (c) => (c.prediction = "x0"), ["prediction", "x0"]],
  ["image_size 1e9", (c) => (c.image_size = 1e9), ["image_size"]],
  ["latent_channels 0", (c) => (c.latent_channels = 0), ["latent_channels"]],
  ["text.max_tokens 1e6", (c) => (c.text.max_tokens = 1e6), ["text.max_tokens"]],
  ["attention_layers not an array", (c) => (c.attention_layers = {}), ["attention_layers"]],
];

for (const [label, edit, says] of SHAPES_CONFIG) {
  Deno.test(`numbers: shapes config.json ${label}`, async () => {
    const dir = await shapesCopy(edit);
    await corpus.rejects(label, () => loadShapesModel({ dir }), { argument: "config.json", says });
    await Deno.remove(dir, { recursive: true });
  });
}

const SHAPES_CROSS: [string, (c: Config) => void, string | RegExp, string[]][] = [
  [
    "max_tokens differs from the tokenizer",
    (c) => (c.text.max_tokens = 77),
    "tokenizer.json max_length",
    ["32", "77"],
  ],
  ["latent_size differs from the UNet", (c) => (c.latent_size = 8), "config.json latent_size", [
    "16",
  ]],
  [
    "latent_channels differs from the UNet",
    (c) => (c.latent_channels = 3),
    "config.json latent_channels",
    ["unet.onnx"],
  ],
  [
    "unet_inputs.sample not an input",
    (c) => (c.unet_inputs.sample = "latents"),
    "config.json unet_inputs.sample",
    ['"latents"', '"sample"'],
  ],
  [
    "unet_inputs.output not an output",
    (c) => (c.unet_inputs.output = "noise"),
    "config.json unet_inputs.output",
    ['"out_sample"'],
  ],
];
for (const [label, edit, argument, says] of SHAPES_CROSS) {
  Deno.test(`numbers: shapes ${label}`, async () => {
    const dir = await shapesCopy(edit);
    await corpus.rejects(label, () => loadShapesModel({ dir }), { argument, says });
    await Deno.remove(dir, { recursive: true });
  });
}

const TOKENIZER: [string, (t: Config) => void, string[]][] = [
  ["sot outside the vocabulary", (t) => (t.sot = 99), ["sot", "99"]],
  ["pad negative", (t) => (t.pad = -1), ["pad"]],
  ["vocab not an array", (t) => (t.vocab = "abc"), ["vocab"]],
  ["max_length as a string", (t) => (t.max_length = "32"), ["max_length", '"32"']],
];
for (const [label, edit, says] of TOKENIZER) {
  Deno.test(`numbers: shapes tokenizer.json ${label}`, async () => {
    const dir = await shapesCopy();
    await editJson(join(dir, "tokenizer.json"), edit);
    await corpus.rejects(label, () => loadShapesModel({ dir }), {
      argument: "tokenizer.json",
      says,
    });
    await Deno.remove(dir, { recursive: true });
  });
}

Deno.test("numbers: tokenizer max_length 4096 against a 32-token text encoder (F14 kind)", async () => {
  const dir = await shapesCopy((c) => (c.text.max_tokens = 4096));
  await editJson(join(dir, "tokenizer.json"), (t) => (t.max_length = 4096));
  await corpus.rejects("shapes max_length vs encoder", () => loadShapesModel({ dir }), {
    argument: "tokenizer.json max_length",
    says: ["4096", "takes 32", "text_encoder.onnx"],
  });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("numbers: config.json that is not an object, or not JSON", async () => {
  for (const [label, text] of [["config.json array", "[1,2]"], ["config.json not JSON", "{oops"]]) {
    const dir = await shapesCopy();
    await Deno.writeTextFile(join(dir, "config.json"), text);
    await corpus.rejects(label, () => loadShapesModel({ dir }), {
      argument: "config.json",
      says: [dir],
    });
    await Deno.remove(dir, { recursive: true });
  }
});

// --- SD 1.5 scheduler/tokenizer configs ------------------------------------------------------

const SCHEDULER: [string, (c: Config) => void, string[]][] = [
  ["F14 num_train_timesteps 1e10", (c) => (c.num_train_timesteps = 1e10), [
    "num_train_timesteps",
    "10000000000",
  ]],
  ["num_train_timesteps as a string", (c) => (c.num_train_timesteps = "1000"), [
    "num_train_timesteps",
    '"1000"',
  ]],
  ["beta_schedule cosine", (c) => (c.beta_schedule = "cosine"), ["beta_schedule"]],
  ["steps_offset past the horizon", (c) => (c.steps_offset = 5000), ["steps_offset"]],
  ["trained_betas wrong length", (c) => (c.trained_betas = [0.1, 0.2]), ["trained_betas"]],
  ["beta_end 0", (c) => (c.beta_end = 0), ["beta_end"]],
];
for (const [label, edit, says] of SCHEDULER) {
  Deno.test(`numbers: SD 1.5 scheduler_config.json ${label}`, async () => {
    const dir = await hfCopy((d) => editJson(join(d, "scheduler", "scheduler_config.json"), edit));
    // The argument is the key or the file, and the message names both (class-specific keys are
    // checked by resolveSchedulerConfig, ranges by the loader's config reader).
    await corpus.rejects(label, () => loadSd15Model(dir, { imageSize: [64, 64] }), {
      argument: new RegExp(`^(${says[0]}|scheduler_config\\.json)$`),
      says: [...says, "scheduler_config.json"],
    });
    await Deno.remove(dir, { recursive: true });
  });
}

Deno.test("numbers: F14 model_max_length 4096 against the 77-token CLIP encoder, at load", async () => {
  const dir = await hfCopy((d) =>
    editJson(join(d, "tokenizer", "tokenizer_config.json"), (c) => (c.model_max_length = 4096))
  );
  for (
    const [label, load] of [
      ["F14 max length (DiffusionModel)", () => loadSd15Model(dir, { imageSize: [64, 64] })],
      ["F14 max length (sessions)", () => loadSd15(dir)],
    ] as const
  ) {
    await corpus.rejects(label, load, {
      argument: "tokenizer/tokenizer_config.json model_max_length",
      says: ["4096", "77"],
    });
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("numbers: SD 1.5 loader options", async () => {
  const dir = "tests/fixtures/hf_tiny";
  const cases: [string, Record<string, unknown>, string][] = [
    ["imageSize not a multiple of 8", { imageSize: [64, 60] }, "imageSize"],
    ["imageSize 1e9", { imageSize: [1e9, 64] }, "imageSize"],
    ["imageSize NaN", { imageSize: [NaN, 64] }, "imageSize"],
    ["scaleFactor NaN", { imageSize: [64, 64], scaleFactor: NaN }, "scaleFactor"],
    ["scaleFactor negative", { imageSize: [64, 64], scaleFactor: -0.18 }, "scaleFactor"],
  ];
  for (const [label, opts, argument] of cases) {
    await corpus.rejects(label, () => loadSd15Model(dir, opts), { argument });
  }
});

// --- N19: betas -------------------------------------------------------------------------

Deno.test("numbers: N19 betas", async () => {
  await corpus.rejects("N19 betas trainSteps 1e10", () => betas({ trainSteps: 1e10 }), {
    argument: "trainSteps",
    says: ["10000000000"],
  });
  await corpus.rejects("betas betaStart NaN", () => betas({ betaStart: NaN }), {
    argument: "betaStart",
  });
  // Known values: SD's scaled_linear betas run from 0.00085 to 0.012 over 1000 steps, and
  // beta_500 = (sqrt(0.00085) + 500/999 (sqrt(0.012) − sqrt(0.00085)))^2 (diffusers' formula).
  await corpus.works("betas scaled_linear known values", () => betas(), (b) => {
    assert.equal(b.length, 1000);
    assert.ok(Math.abs(b[0] - 0.00085) < 1e-15);
    assert.ok(Math.abs(b[999] - 0.012) < 1e-15);
    const r = Math.sqrt(0.00085) + (500 / 999) * (Math.sqrt(0.012) - Math.sqrt(0.00085));
    assert.ok(Math.abs(b[500] - r * r) < 1e-15);
  });
});

// --- F11: the DiffusionModel edge -----------------------------------------------------------

Deno.test("numbers: F11 non-finite values at the DiffusionModel edge", async () => {
  const m = await loadShapesModel({ session: { executionProviders: ["wasm"] } });
  try {
    const lat = (i: number, v: number) => {
      const d = new Float32Array(2 * 4 * 16 * 16);
      d[i] = v;
      return tensor([2, 4, 16, 16], d);
    };
    await corpus.rejects("F11 decode NaN latent", () => decodeLatents(m, lat(5, NaN)), {
      argument: "latents",
      says: ["NaN", "flat index 5"],
    });
    await corpus.rejects("decode Infinity latent", () => m.decode(lat(9, Infinity)), {
      argument: "latents",
      says: ["Infinity", "flat index 9"],
    });
    await corpus.rejects("decode rank-3 latent", () => m.decode(tensor([4, 16, 16])), {
      argument: "latents",
      says: ["[B, C, h, w]"],
    });
    const prompts = ["a photo of three yellow hearts", "a photo of three yellow hearts"];
    const ctx = await m.encodeText(prompts);
    const bad = tensor(ctx.shape, ctx.data.map((v, i) => (i === 7 ? NaN : v)));
    await corpus.rejects(
      "F11 denoise NaN context",
      () => m.denoise(tensor([2, 4, 16, 16]), 500, bad),
      {
        argument: "context",
        says: ["NaN", "flat index 7"],
      },
    );
    await corpus.rejects("denoise -Infinity latent", () => m.denoise(lat(3, -Infinity), 500, ctx), {
      argument: "latents",
    });
    for (const t of [NaN, -1, 1e10, Infinity]) {
      await corpus.rejects(
        `denoise timestep ${t}`,
        () => m.denoise(tensor([2, 4, 16, 16]), t, ctx),
        {
          argument: "timestep",
          says: [String(t), "[0, 1000]"],
        },
      );
    }
    await corpus.rejects(
      "denoise 3-channel latent",
      () => m.denoise(tensor([2, 3, 16, 16]), 10, ctx),
      {
        argument: "latents",
        says: ["4 channels"],
      },
    );
    await corpus.rejects(
      "gradient NaN context",
      () => m.gradient(tensor([2, 4, 16, 16]), 10, bad, []),
      {
        argument: "context",
      },
    );
    await corpus.rejects("encodeText non-string", () => m.encodeText([42 as unknown as string]), {
      argument: "prompts",
    });
    await corpus.works(
      "finite decode of zeros is in [0, 1]",
      () => m.decode(tensor([1, 4, 16, 16])),
      (img) => {
        assert.deepEqual(img.shape, [1, 3, 64, 64]);
        assert.ok(img.data.every((v) => v >= 0 && v <= 1));
      },
    );
  } finally {
    await m.release();
  }
});

Deno.test("numbers: a decoder file that computes NaN is named as the culprit", async () => {
  // log(−1 − |x|) is NaN for every finite x: the inputs are fine, the model file is not.
  const dec = buildModel({
    inputs: [valueInfo("latent_sample", ["batch", 4, 16, 16])],
    // 64 × 64 like the shipped decoder: the loader checks config.json image_size against it.
    outputs: [valueInfo("sample", ["batch", 4, 64, 64])],
    nodes: [
      node("Abs", ["latent_sample"], ["a"]),
      node("Add", ["a", "one"], ["b"]),
      node("Neg", ["b"], ["c"]),
      node("Log", ["c"], ["l"]),
      node("Tile", ["l", "repeats"], ["sample"]),
    ],
    initializers: [
      initializer("one", [], [1]),
      initializer("repeats", [4], new BigInt64Array([1n, 1n, 4n, 4n])),
    ],
    opset: 13,
  });
  const dir = await shapesCopy();
  await Deno.writeFile(join(dir, "vae_decoder.onnx"), encodeModel(dec));
  const m = await loadShapesModel({ dir });
  try {
    await corpus.rejects("decoder computing NaN", () => m.decode(tensor([1, 4, 16, 16])), {
      argument: join(dir, "vae_decoder.onnx"),
      says: ["decoded image", "NaN", "model file"],
    });
  } finally {
    await m.release();
    await Deno.remove(dir, { recursive: true });
  }
});

corpus.close(55);
