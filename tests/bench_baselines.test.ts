/**
 * The InitNO and SynGen entries of the benchmark's method registry: the refinement steps scale
 * from 50 steps, both resolve, and both run end to end on the fake model (tests/control_fake_model.ts).
 */
import assert from "node:assert/strict";
import { initNoRefineSteps, METHOD_DEFAULTS, METHODS, resolveMethods } from "../bench/methods.ts";
import { fakeModel } from "./control_fake_model.ts";

Deno.test("bench baselines: InitNO's refinement steps 10 and 20 of 50 scale to the step count", () => {
  assert.deepEqual(initNoRefineSteps(50), [10, 20]);
  assert.deepEqual(initNoRefineSteps(25), [5, 10]);
  assert.deepEqual(initNoRefineSteps(2), [0, 1]);
});

Deno.test("bench baselines: initno and syngen are registered, resolve and run", async () => {
  for (const name of ["initno", "syngen"]) {
    assert.equal(METHODS.find((m) => m.name === name)?.group, "main", name);
  }
  const resolved = await resolveMethods(["initno", "syngen"]);
  const { model } = fakeModel();
  const opts = { ...METHOD_DEFAULTS, steps: 4, guidance: 2, initnoRefine: 1 };
  for (const r of resolved) {
    assert.equal(r.unavailable, undefined, `${r.entry.name}: ${r.unavailable}`);
    const out = await r.run!(model, "a red circle and a blue square", 0, opts);
    assert.equal(out.image.length, 4 * 4 * 3, `${r.entry.name}: one 4×4 RGB image`);
    assert.ok(out.ms >= 0 && out.note !== undefined, `${r.entry.name}: ${out.note}`);
  }
});
