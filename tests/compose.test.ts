/**
 * The composition layer against the controls it generalises, on the fake model of
 * control_fake_model.ts (exact VJP, 1×4×4 latent): `guide(isac, gradient(η))` must give exactly
 * `optimiseLatent`'s latents, `select(isac)` exactly `selectLatent`'s scores and winner, a
 * selection followed by guidance must equal guidance started from the winner's noise, and the
 * step rules must move a known quadratic as Adam / gradient descent do.
 *
 * @module
 */
import assert from "node:assert/strict";
import { pipe } from "npm:fp-ts@2.16.11/lib/function.js";
import { isLeft, isRight } from "npm:fp-ts@2.16.11/lib/Either.js";
import {
  adamShifts,
  guide,
  lossOf,
  parseE,
  recipe,
  refine,
  rules,
  run,
  select,
  withSampler,
} from "../lib/compose/mod.ts";
import { optimiseLatent } from "../lib/control/optimise_latent.ts";
import { selectLatent } from "../lib/control/select_latent.ts";
import { adamInit, adamStep } from "../lib/control/iter_ref.ts";
import { euler } from "../lib/samplers/euler.ts";
import { AttnkitError } from "../lib/errors.ts";
import { tensor } from "../lib/tensor.ts";
import { fakeModel } from "./control_fake_model.ts";

const PROMPT = "a red circle and a blue square";

Deno.test("compose: guide(isac, gradient(η)) reproduces optimiseLatent exactly", async () => {
  const { model } = fakeModel();
  const want = await optimiseLatent(model, PROMPT, { seed: 3, steps: 5, guidance: 3, eta: 0.5 });
  const got = await pipe(
    recipe(model, PROMPT, { steps: 5, guidance: 3 }),
    guide({ loss: lossOf.isac(), rule: rules.gradient(0.5) }),
    run({ seed: 3 }),
  );
  assert.deepEqual([...got.latents.data], [...want.latents.data]);
  assert.deepEqual(got.log.map((e) => e.values[0]), want.log.map((s) => s.value));
  assert.ok(got.log.every((e) => e.shift[0] > 0));
});

Deno.test("compose: select(isac) reproduces selectLatent's scores and winner", async () => {
  const { model } = fakeModel();
  const want = await selectLatent(model, PROMPT, { seed: 5, steps: 4, guidance: 2, candidates: 3 });
  const got = await pipe(
    recipe(model, PROMPT, { steps: 4, guidance: 2 }),
    select({ score: lossOf.isac(), candidates: 3 }),
    run({ seed: 5 }),
  );
  for (let i = 0; i < 3; i++) {
    assert.ok(
      Math.abs(got.selection!.scores[i] - want.scores[i]) <= 1e-9 * Math.abs(want.scores[i]),
    );
  }
  assert.equal(got.selection!.best, want.best);
  assert.equal(got.seed, 5 + want.best);
  const per = got.latents.data.length;
  assert.deepEqual(
    [...got.latents.data],
    [...want.latents.data.subarray(want.best * per, (want.best + 1) * per)],
  );
});

Deno.test("compose: select then guide = guide from the winner's seed", async () => {
  const { model } = fakeModel();
  const both = await pipe(
    recipe(model, PROMPT, { steps: 4, guidance: 2 }),
    select({ score: lossOf.isac(), candidates: 3 }),
    guide({ loss: lossOf.isac(), rule: rules.gradient(0.3) }),
    run({ seed: 11 }),
  );
  const alone = await pipe(
    recipe(model, PROMPT, { steps: 4, guidance: 2 }),
    guide({ loss: lossOf.isac(), rule: rules.gradient(0.3) }),
    run({ seed: both.seed }),
  );
  assert.deepEqual([...both.latents.data], [...alone.latents.data]);
  assert.equal(both.log.length, 4);
});

Deno.test("compose: A&E's loss on an Euler sampler, only where `at` says", async () => {
  const { model, calls } = fakeModel();
  const out = await pipe(
    recipe(model, PROMPT, { guidance: 1 }),
    withSampler(euler({ steps: 6 })),
    guide({ loss: lossOf.attendExcite(), rule: rules.gradient(20), at: (s) => s.step < 3 }),
    run({ seed: 0 }),
  );
  assert.deepEqual(out.log.map((e) => e.step), [0, 1, 2]);
  // 6 sampling calls + one tapped call per guided step.
  assert.equal(calls.length, 9);
  assert.ok(out.log.every((e) => e.values[0][0] >= 0 && e.values[0][0] <= 1));
});

Deno.test("compose: box + isac summed; box names a noun the prompt lacks → clear error", async () => {
  const { model } = fakeModel();
  const boxes = { circle: [0, 0, 0.5, 1], square: [0.5, 0, 1, 1] } as const;
  const out = await pipe(
    recipe(model, PROMPT, { steps: 3, guidance: 1 }),
    guide({
      loss: lossOf.sum(lossOf.isac(), [lossOf.box({ boxes }), 2]),
      rule: rules.gradient(0.1),
    }),
    run({ seed: 0 }),
  );
  assert.equal(out.log.length, 3);
  await assert.rejects(
    pipe(
      recipe(model, PROMPT, { steps: 2, guidance: 1 }),
      guide({ loss: lossOf.box({ boxes: { star: [0, 0, 1, 1] } }), rule: rules.gradient(1) }),
      run({ seed: 0 }),
    ),
    (e: Error) => e instanceof AttnkitError && /boxes.*"star"/.test(e.message),
  );
});

Deno.test("compose: step rules on a known quadratic", async () => {
  // loss = Σ x², gradient 2x.
  const evaluate = (z: ReturnType<typeof tensor>) =>
    Promise.resolve({
      values: [z.data.reduce((a, v) => a + v * v, 0)],
      grad: tensor(z.shape, z.data.map((v) => 2 * v)),
    });
  const x = tensor([1, 1, 1, 2], [1, -2]);
  const g = await rules.gradient(0.25)(x, evaluate, []);
  assert.deepEqual([...g.data], [0.5, -1]);
  // Adam against the project's torch-parity adamStep, applied by hand.
  const st = adamInit(2);
  let want = x.data;
  for (let i = 0; i < 3; i++) want = adamStep(want, want.map((v) => 2 * v), st, 0.1);
  const a = await adamShifts({ lr: 0.1, shifts: 3 })(x, evaluate, []);
  assert.deepEqual([...a.data], [...want]);
  const values: number[][] = [];
  const r = await refine({ eta: 0.25, target: 0.5 })(x, evaluate, values);
  // 5 → 1.25 → 0.3125: two steps, three evaluations.
  assert.deepEqual(values.map((v) => v[0]), [5, 1.25, 0.3125]);
  assert.deepEqual([...r.data], [0.25, -0.5]);
});

Deno.test("compose: bad arguments name themselves; parsing errors come as Either", () => {
  const { model } = fakeModel();
  assert.throws(() => recipe(model, ""), /prompt/);
  assert.throws(() => recipe(model, "a red circle", { steps: 0 }), /steps/);
  assert.throws(() => select({ score: lossOf.isac(), candidates: 1 }), /candidates/);
  assert.throws(() => rules.gradient(-1), /eta/);
  assert.throws(() => run({ seed: 0.5 }), /seed/);
  assert.ok(isRight(parseE("two cats and a dog")));
  assert.ok(isLeft(parseE("")));
});

Deno.test("compose: mistakes a new user makes are named when the control is built", async () => {
  const { model } = fakeModel();
  const r = recipe(model, PROMPT, { steps: 3, guidance: 1 });
  const named = (arg: string) => (e: Error) => e instanceof AttnkitError && e.argument === arg;
  // An uncalled loss factory, a missing rule, bad `at` values.
  await assert.rejects(
    pipe(r, guide({ loss: lossOf.isac as never, rule: rules.gradient(1) }), run({ seed: 0 })),
    named("loss"),
  );
  assert.throws(() => guide({ loss: lossOf.isac() } as never), named("rule"));
  assert.throws(() => guide({ loss: lossOf.isac(), rule: 5 as never }), named("rule"));
  for (const at of ["x", [-1], [1.5]]) {
    assert.throws(
      () => guide({ loss: lossOf.isac(), rule: rules.gradient(1), at: at as never }),
      named("at"),
    );
  }
  await assert.rejects(
    pipe(r, guide({ loss: lossOf.isac(), rule: rules.gradient(1), at: [99] }), run({ seed: 0 })),
    named("at"),
  );
  // Samplers: a string is not a sampler; a sampler's own step count wins only when consistent.
  assert.throws(() => recipe(model, PROMPT, { sampler: "euler" as never }), named("sampler"));
  assert.throws(
    () => recipe(model, PROMPT, { sampler: euler({ steps: 3 }), steps: 20 }),
    named("steps"),
  );
  assert.throws(() => recipe(null as never, PROMPT), named("model"));
  // Boxes are checked when the loss is built, named by noun; sums and lifts by position.
  assert.throws(
    () => lossOf.box({ boxes: { circle: [0.5, 0.5, 0.1, 0.1] } }),
    named("boxes.circle"),
  );
  assert.throws(() => lossOf.box({ boxes: { circle: [NaN, 0, 1, 1] } }), named("boxes.circle"));
  assert.throws(() => lossOf.sum([lossOf.isac(), NaN]), named("terms[0]"));
  assert.throws(() => lossOf.lift(3 as never), named("loss"));
  // A lifted loss whose gradient is not a tensor of the maps' shape.
  const badGrad = lossOf.lift((m) => ({ value: 0, grad: { cross: m.cross.data as never } }));
  await assert.rejects(
    pipe(r, guide({ loss: badGrad, rule: rules.gradient(1) }), run({ seed: 0 })),
    named("loss"),
  );
});

Deno.test("compose: a score that cannot tell candidates apart is reported as tied", async () => {
  const { model } = fakeModel();
  const flat = lossOf.lift(() => ({ value: 1, grad: {} }));
  const out = await pipe(
    recipe(model, PROMPT, { steps: 2, guidance: 1 }),
    select({ score: flat, candidates: 2 }),
    run({ seed: 0 }),
  );
  assert.equal(out.selection!.tied, true);
  assert.equal(out.selection!.best, 0);
});
