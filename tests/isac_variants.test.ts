/**
 * ISAC objective variants (lib/isac/variant.ts): L_ins and L_cls of every named variant against
 * numpy (tests/fixtures/make_issue11_fixtures.py), the variants' gradients against central finite
 * differences, and the property that motivates `joint`: an absent class stays visible.
 */
import assert from "node:assert/strict";
import type { AttentionMaps } from "../lib/attention/types.ts";
import { isacLoss, type IsacSpec, type IsacWeights } from "../lib/isac/loss.ts";
import { ISAC_VARIANTS, isacVariant } from "../lib/isac/variant.ts";
import { AttnkitError } from "../lib/errors.ts";
import { mulberry32 } from "../lib/random.ts";
import { tensor } from "../lib/tensor.ts";

interface Case {
  name: string;
  size: [number, number];
  L: number;
  self: number[];
  cross: number[];
  spec: IsacSpec;
  expected: Record<string, { ins: number; cls: number }>;
}

const fixture = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/issue11/isac_variants.json", import.meta.url)),
) as { variants: Record<string, unknown>; cases: Case[] };

function mapsOf(c: Case): AttentionMaps {
  const hw = c.size[0] * c.size[1];
  return {
    self: tensor([hw, hw], Float32Array.from(c.self)),
    cross: tensor([hw, c.L], Float32Array.from(c.cross)),
    size: c.size,
  };
}

Deno.test("isac variants: the fixture names exactly the variants lib/isac/variant.ts has", () => {
  assert.deepEqual(Object.keys(fixture.variants).sort(), Object.keys(ISAC_VARIANTS).sort());
  for (const [k, v] of Object.entries(fixture.variants)) assert.deepEqual(v, ISAC_VARIANTS[k]);
});

Deno.test("isac variants: L_ins and L_cls match numpy for every variant", async (t) => {
  for (const c of fixture.cases) {
    for (const [name, want] of Object.entries(c.expected)) {
      await t.step(`${c.name} / ${name}`, () => {
        const r = isacLoss(mapsOf(c), { ...c.spec, variant: isacVariant(name) }, {
          ins: 1,
          cls: 1,
        });
        const close = (a: number, b: number) => Math.abs(a - b) <= 1e-5 + 1e-4 * Math.abs(b);
        assert.ok(close(r.ins, want.ins), `L_ins ${r.ins} vs numpy ${want.ins}`);
        assert.ok(close(r.cls, want.cls), `L_cls ${r.cls} vs numpy ${want.cls}`);
      });
    }
  }
});

Deno.test("isac variants: the default is attnkit-0.1, bit for bit", () => {
  for (const c of fixture.cases) {
    const a = isacLoss(mapsOf(c), c.spec, { ins: 0.3, cls: 0.7 });
    const b = isacLoss(mapsOf(c), { ...c.spec, variant: isacVariant("attnkit-0.1") }, {
      ins: 0.3,
      cls: 0.7,
    });
    assert.equal(a.value, b.value);
    assert.deepEqual(a.grad.self!.data, b.grad.self!.data);
    assert.deepEqual(a.grad.cross!.data, b.grad.cross!.data);
  }
});

Deno.test("isac variants: a faint (absent) class scores as present under per-class, not under joint", () => {
  // Case 2's third class is attended weakly (logit +0.8 against +3). Per-class scaling blows its
  // map up to a peak of 1; joint scaling keeps it small, so its overlaps count for little.
  const c = fixture.cases[1];
  const per = isacLoss(mapsOf(c), { ...c.spec, variant: isacVariant("attnkit-0.1") }, {
    ins: 0,
    cls: 1,
  });
  const joint = isacLoss(mapsOf(c), { ...c.spec, variant: isacVariant("joint") }, {
    ins: 0,
    cls: 1,
  });
  const col = (d: Float32Array, k: number, j: number) => d.filter((_, i) => i % k === j);
  const peak = (r: typeof per, j: number) => Math.max(...col(r.classMaps.data, 3, j));
  assert.ok(Math.abs(peak(per, 2) - 1) < 1e-6, `per-class peak ${peak(per, 2)}`);
  assert.ok(peak(joint, 2) < 0.9 * Math.max(peak(joint, 0), peak(joint, 1)));
});

/** Finite differences on entries of self and cross; passes if some h ∈ {1e-4, 1e-5, 1e-6} agrees. */
function fdCheck(maps: AttentionMaps, spec: IsacSpec, w: IsacWeights, seed: number): number {
  const base = isacLoss(maps, spec, w);
  const rng = mulberry32(seed);
  let nonzero = 0;
  for (const which of ["self", "cross"] as const) {
    const t = maps[which];
    const g = base.grad[which]!.data;
    const top = [...g.keys()].sort((a, b) => Math.abs(g[b]) - Math.abs(g[a])).slice(0, 25);
    const rand = Array.from({ length: 25 }, () => Math.floor(rng() * t.data.length));
    for (const i of [...new Set([...top, ...rand])]) {
      const v = t.data[i];
      let ok = false;
      let last = "";
      for (const h of [1e-4, 1e-5, 1e-6]) {
        t.data[i] = v + h;
        const vu = t.data[i];
        const up = isacLoss(maps, spec, w).value;
        t.data[i] = v - h;
        const vd = t.data[i];
        const down = isacLoss(maps, spec, w).value;
        t.data[i] = v;
        // Central, forward and backward differences: at a kink (a near-tie of the min-max
        // extremes or of an MPO argmax) the subgradient taken is one of the one-sided ones.
        const tol = 5e-3 * (1e-4 / h) + 2e-3 * Math.abs(g[i]);
        const fds = [
          (up - down) / (vu - vd),
          (up - base.value) / (vu - v),
          (base.value - down) / (v - vd),
        ];
        if (fds.some((fd) => Math.abs(fd - g[i]) <= tol)) {
          ok = true;
          break;
        }
        last = `fd ${fds.join(", ")} vs analytic ${g[i]} (h ${h})`;
      }
      assert.ok(ok, `${which}[${i}]: ${last}`);
      if (Math.abs(g[i]) > 1e-3) nonzero++;
    }
  }
  return nonzero;
}

Deno.test("isac variants: gradients match finite differences", async (t) => {
  for (const name of Object.keys(ISAC_VARIANTS)) {
    for (const [ci, c] of fixture.cases.entries()) {
      await t.step(`${name} / ${c.name}`, () => {
        const maps = mapsOf(c);
        const spec = { ...c.spec, variant: isacVariant(name) };
        const nz = fdCheck(maps, spec, { ins: 0.6, cls: 0.4 }, 10 + ci);
        assert.ok(nz > 5, `only ${nz} entries with a gradient`);
      });
    }
  }
});

Deno.test("isac variants: unknown names and bad bindings are AttnkitErrors", () => {
  assert.throws(
    () => isacVariant("nope", "--variant"),
    (e) => e instanceof AttnkitError && /--variant/.test(e.message),
  );
  const c = fixture.cases[0];
  assert.throws(
    () =>
      isacLoss(mapsOf(c), {
        ...c.spec,
        bind: [{ token: 99, cls: 0, word: "red" }],
        variant: isacVariant("joint-bind"),
      }, { ins: 1, cls: 1 }),
    (e) => e instanceof AttnkitError && /spec\.bind\[0\]/.test(e.message),
  );
});
