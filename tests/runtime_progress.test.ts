/**
 * Progress is reported only when asked: `sampleLatents` calls `onProgress` once per step and
 * writes nothing to stderr unless `progress: true`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { sampleLatents } from "../lib/runtime/sample.ts";
import { stepProgress } from "../lib/runtime/progress.ts";
import { fakeModel } from "./control_fake_model.ts";

Deno.test("sampleLatents reports each step to onProgress, in order", async () => {
  const { model } = fakeModel();
  const seen: [number, number][] = [];
  await sampleLatents(model, "a red circle", {
    seed: 0,
    steps: 3,
    guidance: 1,
    onProgress: (done, total) => seen.push([done, total]),
  });
  assert.deepEqual(seen, [[1, 3], [2, 3], [3, 3]]);
});

Deno.test("stepProgress draws no bar unless asked, even with notes", () => {
  const writes: Uint8Array[] = [];
  const orig = Deno.stderr.writeSync;
  Deno.stderr.writeSync = (b: Uint8Array) => {
    writes.push(b);
    return b.length;
  };
  try {
    const p = stepProgress("x", 2);
    p.update(1, "note");
    p.update(2);
    p.finish();
    assert.equal(writes.length, 0);
    const q = stepProgress("x", 1, { bar: true });
    q.update(1);
    q.finish();
    assert.ok(writes.length >= 2);
  } finally {
    Deno.stderr.writeSync = orig;
  }
});
