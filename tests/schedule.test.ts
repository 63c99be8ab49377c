/** The Table 2 schedules, windows and MIFO's decay at hand-computed points (t counts down from T). */
import assert from "node:assert/strict";
import { schedule } from "../lib/schedule.ts";

const T = 1000;
const close = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);

Deno.test("soft (ours) puts instances first: λ_ins = t/T, λ_cls = 1 − t/T", () => {
  assert.deepEqual(schedule.soft(T, T), { ins: 1, cls: 0 }); // first, noisiest step
  assert.deepEqual(schedule.soft(0, T), { ins: 0, cls: 1 });
  const w = schedule.soft(250, T);
  close(w.ins, 0.25, "ins");
  close(w.cls, 0.75, "cls");
  assert.deepEqual(schedule.reverseSoft(250, T), { ins: 0.75, cls: 0.25 });
});

Deno.test("hard switches from instances to semantics at t*, reverseHard the other way", () => {
  const hard = schedule.hard();
  assert.deepEqual(hard(999, T), { ins: 1, cls: 0 });
  assert.deepEqual(hard(501, T), { ins: 1, cls: 0 });
  assert.deepEqual(hard(500, T), { ins: 0, cls: 1 }, "H(0) = 0: the instance phase ends at t*");
  assert.deepEqual(hard(1, T), { ins: 0, cls: 1 });
  assert.deepEqual(schedule.hard(800)(801, T), { ins: 1, cls: 0 });
  assert.deepEqual(schedule.hard(800)(799, T), { ins: 0, cls: 1 });
  assert.deepEqual(schedule.reverseHard()(999, T), { ins: 0, cls: 1 });
  assert.deepEqual(schedule.reverseHard()(100, T), { ins: 1, cls: 0 });
});

Deno.test("constant schedules (Table 2 A-C)", () => {
  for (const t of [T, 500, 0]) {
    assert.deepEqual(schedule.instanceOnly(t, T), { ins: 1, cls: 0 });
    assert.deepEqual(schedule.semanticOnly(t, T), { ins: 0, cls: 1 });
    assert.deepEqual(schedule.fixed()(t, T), { ins: 0.5, cls: 0.5 });
    assert.deepEqual(schedule.fixed(0.25)(t, T), { ins: 0.25, cls: 0.75 });
  }
});

Deno.test("window(ratio) is 1 for the first ratio·T of denoising", () => {
  const w = schedule.window(0.3);
  assert.equal(w(1000, T), 1);
  assert.equal(w(701, T), 1);
  assert.equal(w(700, T), 0);
  assert.equal(w(0, T), 0);
  assert.equal(schedule.window(0)(1000, T), 0);
  assert.equal(schedule.window(1)(1, T), 1);
});

Deno.test("mifoDecay: linear 0.4 → 0.1 over steps 1-3, cosine to 0.01 at 15, flat after", () => {
  const a = schedule.mifoDecay();
  close(a(1), 0.4, "i=1");
  close(a(2), 0.25, "i=2");
  close(a(3), 0.1, "i=3");
  close(a(0), 0.55, "i=0 extrapolates as in MIFO's code");
  // Half-way through the cosine stage (i = 9): 0.01 + 0.09 · (1 + cos(π/2)) / 2 = 0.055.
  close(a(9), 0.055, "i=9");
  close(a(4), 0.01 + 0.09 * (1 + Math.cos(Math.PI / 12)) / 2, "i=4");
  close(a(15), 0.01, "i=15");
  close(a(40), 0.01, "i=40");
  const b = schedule.mifoDecay({ alphaMax: 0.5, guidanceSteps: 11 });
  close(b(1), 0.5, "custom i=1");
  close(b(7), 0.055, "custom mid-cosine");
});
