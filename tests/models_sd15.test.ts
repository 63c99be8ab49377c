/**
 * `loadSd15` on the tiny SD-1.5-shaped fixture (tests/fixtures/make_hf_tiny.py), served by a
 * local HTTP server on 127.0.0.1 and read from disk: layout resolution, external data, cache
 * behaviour (no second download, resume, checksum), and one text-encoder + UNet + VAE call whose
 * outputs are compared with PyTorch's (reference.json, written by the fixture script).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { AttnkitError } from "../lib/errors.ts";
import { ort } from "../lib/onnx/ort.ts";
import { cachePathFor, PART_SUFFIX } from "../lib/models/cache.ts";
import { resolveSd15Layout } from "../lib/models/hf_layout.ts";
import {
  loadSd15,
  parseSchedulerConfig,
  releaseSd15,
  resolveSd15Files,
  type Sd15Model,
} from "../lib/models/sd15.ts";
import { HF_TINY, listFiles, withServer } from "./models_support.ts";

const reference = JSON.parse(await Deno.readTextFile(join(HF_TINY, "reference.json")));
const manifest = JSON.parse(await Deno.readTextFile(join(HF_TINY, "manifest.json")));
/** Files the loader needs (everything but the test-only reference and the manifest itself). */
const LAYOUT_FILES = Object.keys(manifest.files).filter((f) => f !== "reference.json").sort();

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Copies the fixture into a temporary directory (for layouts with a file removed or added). */
async function copyFixture(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "attnkit-hf-" });
  for (const rel of await listFiles(HF_TINY)) {
    await Deno.mkdir(join(dir, rel, ".."), { recursive: true });
    await Deno.copyFile(join(HF_TINY, rel), join(dir, rel));
  }
  return dir;
}

/** Text encoder on "a red cube", UNet on the reference latent, VAE decoder: vs PyTorch. */
async function checkAgainstTorch(m: Sd15Model): Promise<void> {
  const ids = m.tokenizer.encode("a red cube");
  assert.deepEqual([...ids], reference.input_ids);
  const te = await m.textEncoder.run({ input_ids: new ort.Tensor("int32", ids, [1, 77]) });
  const ctx = te.last_hidden_state;
  assert.deepEqual(ctx.dims, [1, 77, 32]);
  const rows = (ctx.data as Float32Array).subarray(0, 5 * 32);
  assert.ok(maxAbsDiff(rows, reference.last_hidden_state_rows_0_4) < 1e-4, "text encoder");
  const sample = new Float32Array(256).map((_, i) => Math.sin(i * 0.37));
  const out = await m.unet.run({
    sample: new ort.Tensor("float32", sample, [1, 4, 8, 8]),
    timestep: new ort.Tensor("int64", BigInt64Array.from([981n]), [1]),
    encoder_hidden_states: ctx,
  });
  assert.deepEqual(out.out_sample.dims, [1, 4, 8, 8]);
  const diff = maxAbsDiff(out.out_sample.data as Float32Array, reference.out_sample);
  assert.ok(diff < 1e-4, `UNet differs from PyTorch by ${diff}`);
  const img = await m.vaeDecoder.run({
    latent_sample: new ort.Tensor("float32", sample, [1, 4, 8, 8]),
  });
  assert.deepEqual(img.sample.dims, reference.vae_sample_shape);
  const sum = (img.sample.data as Float32Array).reduce((s, v) => s + v, 0);
  assert.ok(Math.abs(sum - reference.vae_sample_sum) < 1e-3, `VAE sum ${sum}`);
}

Deno.test("sd15: load over HTTP into the cache, run, reload without requests", async (t) => {
  await withServer(HF_TINY, async (server, cacheDir) => {
    const progress = new Map<string, number>();
    const m = await loadSd15(server.url, {
      cacheDir,
      manifest: "manifest.json",
      onProgress: (file, done) => progress.set(file, done),
    });
    try {
      await t.step("config from scheduler_config.json and the UNet's inputs", () => {
        const s = m.config.scheduler;
        assert.equal(s.betaSchedule, "scaled_linear");
        assert.equal(s.betaStart, 0.00085);
        assert.equal(s.betaEnd, 0.012);
        assert.equal(s.numTrainTimesteps, 1000);
        assert.equal(s.stepsOffset, 1);
        assert.equal(s.predictionType, "epsilon");
        assert.equal(m.config.pipelineClass, "OnnxStableDiffusionPipeline");
        assert.equal(m.config.timestepType, "int64");
        assert.equal(m.config.contextDim, 32);
        assert.equal(m.tokenizer.maxLength, 77);
      });
      await t.step("external data found from the models' initializers", () => {
        assert.deepEqual(m.files.unet.externalData.map((e) => e.location), ["model.onnx_data"]);
        assert.deepEqual(m.files.textEncoder.externalData.map((e) => e.location), ["weights.pb"]);
        assert.deepEqual(m.files.vaeDecoder.externalData, []);
        assert.equal(m.vaeEncoder, undefined);
        assert.deepEqual(m.unet.inputNames, ["sample", "timestep", "encoder_hidden_states"]);
        assert.deepEqual(m.unet.outputNames, ["out_sample"]);
      });
      await t.step("each file requested once, vae_encoder not asked for (index says none)", () => {
        const paths = server.requests.map((r) => r.path).sort();
        assert.deepEqual(paths, [...LAYOUT_FILES, "manifest.json"].sort());
        assert.ok(server.requests.every((r) => r.status === 200));
        assert.equal(
          progress.get("unet/model.onnx_data"),
          manifest.files["unet/model.onnx_data"].size,
        );
      });
      await t.step("cached files equal the originals", async () => {
        for (const rel of LAYOUT_FILES) {
          const cached = await Deno.readFile(cachePathFor(server.url + rel, cacheDir));
          assert.deepEqual(cached, await Deno.readFile(join(HF_TINY, rel)), rel);
        }
      });
      await t.step("text encoder, UNet and VAE match PyTorch", () => checkAgainstTorch(m));
    } finally {
      await releaseSd15(m);
    }
    await t.step("a second load makes no request", async () => {
      const before = server.requests.length;
      const again = await loadSd15(server.url, { cacheDir, manifest: "manifest.json" });
      await releaseSd15(again);
      assert.equal(server.requests.length, before);
    });
  });
});

Deno.test("sd15: interrupted download leaves no final file and resumes", async () => {
  await withServer(HF_TINY, async (server, cacheDir) => {
    const rel = "unet/model.onnx_data";
    const final = cachePathFor(server.url + rel, cacheDir);
    server.faults.drop = { [rel]: 8192 };
    await assert.rejects(
      resolveSd15Files(server.url, { cacheDir, manifest: "manifest.json", retries: 0 }),
      (e: unknown) => e instanceof AttnkitError && /interrupted/.test(e.message),
    );
    assert.equal(await exists(final), false);
    assert.ok(await exists(final + PART_SUFFIX));
    server.faults.drop = undefined;
    const m = await loadSd15(server.url, { cacheDir, manifest: "manifest.json", retries: 0 });
    await releaseSd15(m);
    const resumed = server.requests.filter((r) => r.path === rel);
    assert.deepEqual(resumed.map((r) => r.status), [200, 206]);
    assert.deepEqual(await Deno.readFile(final), await Deno.readFile(join(HF_TINY, rel)));
    assert.equal(await exists(final + PART_SUFFIX), false);
  });
});

Deno.test("sd15: checksum mismatch from the manifest errors and leaves nothing", async () => {
  await withServer(HF_TINY, async (server, cacheDir) => {
    const rel = "unet/model.onnx_data";
    const final = cachePathFor(server.url + rel, cacheDir);
    server.faults.corrupt = new Set([rel]);
    await assert.rejects(
      resolveSd15Files(server.url, { cacheDir, manifest: "manifest.json" }),
      (e: unknown) =>
        e instanceof AttnkitError && e.argument === server.url + rel &&
        e.message.includes(manifest.files[rel].sha256) && /sha256 mismatch/.test(e.message),
    );
    assert.equal(await exists(final), false);
    assert.equal(await exists(final + PART_SUFFIX), false);
  });
});

Deno.test("sd15: layout errors name the file and the layout", async (t) => {
  await t.step("missing required file over HTTP (404)", async () => {
    await withServer(HF_TINY, async (server, cacheDir) => {
      server.faults.missing = new Set(["tokenizer/merges.txt"]);
      await assert.rejects(
        resolveSd15Files(server.url, { cacheDir }),
        (e: unknown) =>
          e instanceof AttnkitError && e.argument === "tokenizer/merges.txt" &&
          /Hugging Face ONNX layout/.test(e.message) && e.message.includes("unet/model.onnx"),
      );
    });
  });
  const dir = await copyFixture();
  try {
    await t.step("missing external data names the data file and the location", async () => {
      await Deno.rename(join(dir, "unet/model.onnx_data"), join(dir, "elsewhere"));
      await assert.rejects(
        resolveSd15Files(dir),
        (e: unknown) =>
          e instanceof AttnkitError && e.argument === "unet/model.onnx_data" &&
          /"model.onnx_data"/.test(e.message),
      );
      await Deno.rename(join(dir, "elsewhere"), join(dir, "unet/model.onnx_data"));
    });
    await t.step("a declared vae_encoder must exist; present, it gets a session", async () => {
      const indexPath = join(dir, "model_index.json");
      const index = JSON.parse(await Deno.readTextFile(indexPath));
      index.vae_encoder = ["diffusers", "OnnxRuntimeModel"];
      await Deno.writeTextFile(indexPath, JSON.stringify(index));
      await assert.rejects(
        resolveSd15Files(dir),
        (e: unknown) => e instanceof AttnkitError && e.argument === "vae_encoder/model.onnx",
      );
      await Deno.mkdir(join(dir, "vae_encoder"));
      await Deno.copyFile(join(dir, "vae_decoder/model.onnx"), join(dir, "vae_encoder/model.onnx"));
      const m = await loadSd15(dir);
      try {
        assert.ok(m.vaeEncoder);
        assert.deepEqual(m.vaeEncoder.inputNames, ["latent_sample"]);
        await checkAgainstTorch(m);
      } finally {
        await releaseSd15(m);
      }
    });
    await t.step("SDXL-class pipelines are refused", async () => {
      const indexPath = join(dir, "model_index.json");
      const index = JSON.parse(await Deno.readTextFile(indexPath));
      index._class_name = "ORTStableDiffusionXLPipeline";
      await Deno.writeTextFile(indexPath, JSON.stringify(index));
      await assert.rejects(
        resolveSd15Layout(dir, (rel) => Promise.resolve(join(dir, rel))),
        (e: unknown) => e instanceof AttnkitError && e.argument === "model_index.json",
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  await t.step("a source that is neither a URL nor a directory", async () => {
    await assert.rejects(
      loadSd15(join(HF_TINY, "nope")),
      (e: unknown) => e instanceof AttnkitError && e.argument === "source",
    );
  });
});

Deno.test("sd15: scheduler config parsing", async (t) => {
  await t.step("diffusers defaults for missing keys", () => {
    const s = parseSchedulerConfig({ _class_name: "DDIMScheduler" });
    assert.equal(s.betaSchedule, "linear");
    assert.equal(s.betaStart, 0.0001);
    assert.equal(s.betaEnd, 0.02);
    assert.equal(s.stepsOffset, 0);
    assert.equal(s.predictionType, "epsilon");
    assert.equal(s.timestepSpacing, "leading");
  });
  await t.step("v-prediction (SD 2.x) and trained betas", () => {
    const s = parseSchedulerConfig({
      prediction_type: "v_prediction",
      num_train_timesteps: 3,
      trained_betas: [0.1, 0.2, 0.3],
    });
    assert.equal(s.predictionType, "v_prediction");
    assert.deepEqual(s.trainedBetas, [0.1, 0.2, 0.3]);
  });
  await t.step("bad values name scheduler_config.json", () => {
    for (
      const bad of [
        { beta_schedule: "cosine" },
        { prediction_type: "noise" },
        { beta_start: "0.1" },
        { num_train_timesteps: 0 },
        { num_train_timesteps: 2, trained_betas: [0.1] },
      ]
    ) {
      assert.throws(
        () => parseSchedulerConfig(bad),
        (e: unknown) => e instanceof AttnkitError && e.argument === "scheduler_config.json",
        JSON.stringify(bad),
      );
    }
  });
});
