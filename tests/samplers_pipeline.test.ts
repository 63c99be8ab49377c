/**
 * Whole sampling loops on the tiny HF-layout model against diffusers' own schedulers driving the
 * same ONNX UNet in onnxruntime (tests/fixtures/make_scheduler_pipeline_fixtures.py): the
 * loader reads each scheduler config, `sampleLatents` runs its default sampler from the same
 * x_T, and the final latents must agree.
 */
import assert from "node:assert/strict";
import { defaultSampler, loadSd15Model, sampleLatents, tensor } from "../mod.ts";
import fixture from "./fixtures/scheduler_pipeline.json" with { type: "json" };

async function copyDir(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (e.isDirectory) await copyDir(`${from}/${e.name}`, `${to}/${e.name}`);
    else await Deno.copyFile(`${from}/${e.name}`, `${to}/${e.name}`);
  }
}

Deno.test("scheduler configs: hf_tiny sampling loops equal diffusers + onnxruntime", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    await copyDir(new URL("./fixtures/hf_tiny/", import.meta.url).pathname, dir);
    for (const c of fixture.cases) {
      await t.step(c.name, async () => {
        await Deno.writeTextFile(
          `${dir}/scheduler/scheduler_config.json`,
          JSON.stringify(c.config),
        );
        const m = await loadSd15Model(dir, { imageSize: [64, 64] });
        try {
          const ts = defaultSampler(m, c.steps).timesteps();
          assert.equal(ts.length, c.timesteps.length);
          ts.forEach((v, i) => assert.ok(Math.abs(v - c.timesteps[i]) < 1e-2, `t[${i}] = ${v}`));
          const out = await sampleLatents(m, "a red cube", {
            seed: 0,
            steps: c.steps,
            guidance: 1,
            adjust: (e) =>
              Promise.resolve(
                e.step === 0 ? tensor(e.latents.shape, Float32Array.from(c.x_T)) : e.latents,
              ),
          });
          let worst = 0, scale = 0;
          for (let i = 0; i < c.final.length; i++) {
            worst = Math.max(worst, Math.abs(out.data[i] - c.final[i]));
            scale = Math.max(scale, Math.abs(c.final[i]));
          }
          assert.ok(
            worst <= 1e-4 * Math.max(1, scale),
            `${c.name}: max |diff| ${worst} (scale ${scale})`,
          );
        } finally {
          await m.release();
        }
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
