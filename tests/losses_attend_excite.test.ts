/**
 * Attend-and-Excite, the soft IoU and the GSN sum: values against an independent
 * re-computation and known cases, gradients against central finite differences, bad input.
 */
import assert from "node:assert/strict";
import type { AttentionMaps } from "../lib/attention/types.ts";
import { attendExciteLoss } from "../lib/losses/attend_excite.ts";
import { gsnLoss } from "../lib/losses/gsn.ts";
import { iouLoss, iouOnMaps, softIou } from "../lib/losses/iou.ts";
import { lossOf } from "../lib/losses/mod.ts";
import { tensor } from "../lib/tensor.ts";
import { checkGradient, randomMaps, throwsNaming } from "./losses_support.ts";

const near = (a: number, b: number, tol: number, what: string) =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

/**
 * The A&E maps written out plainly: softmax(τ·x[1:last]) per pixel, mean over the target's
 * columns, then a 3×3 smoothing with an explicitly padded array and the 2-D kernel of spec §0.
 */
function referenceMaps(
  maps: AttentionMaps,
  targets: number[][],
  tau: number,
  last: number,
): Float64Array[] {
  const [h, w] = maps.size;
  const l = maps.cross.shape[1];
  const e = Math.exp(-1);
  const k1 = [e, 1, e].map((v) => v / (1 + 2 * e));
  return targets.map((cols) => {
    const raw = new Float64Array(h * w);
    for (let p = 0; p < h * w; p++) {
      const row = Array.from({ length: last - 1 }, (_, j) => tau * maps.cross.data[p * l + j + 1]);
      const m = Math.max(...row);
      const z = row.reduce((s, v) => s + Math.exp(v - m), 0);
      raw[p] = cols.reduce((s, c) => s + Math.exp(row[c - 1] - m) / z, 0) / cols.length;
    }
    const padded: number[][] = [];
    for (let y = -1; y <= h; y++) {
      const yy = y < 0 ? 1 : y >= h ? h - 2 : y;
      padded.push([]);
      for (let x = -1; x <= w; x++) {
        const xx = x < 0 ? 1 : x >= w ? w - 2 : x;
        padded[y + 1].push(raw[yy * w + xx]);
      }
    }
    const out = new Float64Array(h * w);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        let s = 0;
        for (let a = 0; a < 3; a++) {
          for (let b = 0; b < 3; b++) s += k1[a] * k1[b] * padded[y + a][x + b];
        }
        out[y * w + x] = s;
      }
    }
    return out;
  });
}

/** 6×6 maps, L = 5: token 1 owns a 3×3 blob, token 3 the rest, token 2 is nearly ignored. */
function neglectedScene(): AttentionMaps {
  const h = 6, w = 6, l = 5;
  const cross = new Float32Array(h * w * l);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const p = y * w + x;
      const inBlob = y >= 1 && y <= 3 && x >= 1 && x <= 3;
      const row = inBlob ? [0.4, 0.45, 0.002, 0.1, 0.048] : [0.5, 0.05, 0.003, 0.4, 0.047];
      cross.set(row, p * l);
    }
  }
  return { self: tensor([36, 36]), cross: tensor([36, l], cross), size: [h, w] };
}

Deno.test("A&E: the neglected token scores near 1 and attains the loss", () => {
  const r = attendExciteLoss(neglectedScene(), { tokens: [1, 2] });
  assert.equal(r.worst, 1, "target 1 (token 2) is the neglected one");
  assert.ok(r.perToken[1] > 0.95, `neglected token loss ${r.perToken[1]}`);
  assert.ok(r.perToken[0] < 0.1, `attended token loss ${r.perToken[0]}`);
  near(r.value, r.perToken[1], 0, "value is the worst target's loss");
  near(r.peaks[0], referenceMaps(neglectedScene(), [[1]], 100, 5)[0][2 * 6 + 2], 1e-6, "blob peak");
  assert.equal(r.pixel % 1, 0);
});

Deno.test("A&E: value matches a plain re-computation (τ, last, multi-token target)", () => {
  const maps = randomMaps(5, 6, 7, 4, 0.2);
  for (
    const [tokens, tau, last] of [[[2, 4], 100, 7], [[1, [3, 5]], 100, 6], [[6, 2], 20, 7]] as const
  ) {
    const targets = tokens.map((t) => (typeof t === "number" ? [t] : [...t]));
    const ref = referenceMaps(maps, targets, tau, last).map((m) => Math.max(...m));
    const expected = Math.max(...ref.map((p) => Math.max(0, 1 - p)));
    const r = attendExciteLoss(maps, { tokens, tau, last });
    ref.forEach((p, i) => near(r.peaks[i], p, 1e-5, `peak ${i} (τ ${tau}, last ${last})`));
    near(r.value, expected, 1e-5, `value (τ ${tau}, last ${last})`);
  }
});

Deno.test("A&E: gradient matches central finite differences", () => {
  // Raw cross values close together so the τ = 100 softmax is not saturated everywhere.
  const maps = randomMaps(5, 5, 6, 11, 0.2);
  checkGradient(lossOf.attendExcite({ tokens: [2, 4] }), maps, { tol: 5e-3 });
  checkGradient(lossOf.attendExcite({ tokens: [1, [3, 4]], last: 5, tau: 30 }), maps, { seed: 2 });
  checkGradient(lossOf.attendExcite({ tokens: [2, 3], smooth: false }), maps, {
    seed: 3,
    tol: 5e-3,
  });
  // Columns from `last` on and the start token get no gradient.
  const g = attendExciteLoss(maps, { tokens: [1, 2], last: 4 }).grad.cross!;
  for (let p = 0; p < 25; p++) {
    for (const c of [0, 4, 5]) assert.equal(g.data[p * 6 + c], 0, `column ${c}`);
  }
});

Deno.test("IoU: identical maps give 1/2 (Σ(a+b) form) or 1 (union form), disjoint maps 0", () => {
  const a = [0.1, 0.5, 0.9, 0.3];
  near(softIou(a, a).value, 0.5, 1e-15, "sum form, identical");
  near(softIou(a, a, "union").value, 1, 1e-15, "union form, identical");
  assert.equal(softIou([1, 0.5, 0, 0], [0, 0, 0.2, 0.7]).value, 0, "disjoint");
  assert.equal(softIou([1, 0.5, 0, 0], [0, 0, 0.2, 0.7], "union").value, 0, "disjoint (union)");
  // Hand-computed: min = 0.1 + 0.2, sum = 0.4 + 0.5 + 0.3, max = 0.3 + 0.3 + 0.1.
  near(softIou([0.1, 0.3, 0.1], [0.3, 0.2, 0]).value, 0.3 / 1.0, 1e-15, "sum form");
  near(softIou([0.1, 0.3, 0.1], [0.3, 0.2, 0], "union").value, 0.3 / 0.7, 1e-15, "union form");
  // Three maps: the mean over the three pairs.
  const r = iouOnMaps([Float64Array.from(a), Float64Array.from(a), new Float64Array(4)]);
  near(r.value, (0.5 + 0 + 0) / 3, 1e-15, "mean over pairs");
  assert.equal(iouOnMaps([Float64Array.from(a)]).value, 0, "one target");
  // On maps: two equal token columns make identical processed maps.
  const maps = randomMaps(4, 4, 5, 2, 0.2);
  const cross = maps.cross.data.slice();
  for (let p = 0; p < 16; p++) cross[p * 5 + 3] = cross[p * 5 + 2];
  const same = { ...maps, cross: tensor([16, 5], cross) };
  near(iouLoss(same, { tokens: [2, 3] }).value, 0.5, 1e-12, "equal columns");
  near(iouLoss(same, { tokens: [2, 3], form: "union" }).value, 1, 1e-12, "equal columns (union)");
});

Deno.test("IoU and GSN: gradients match central finite differences", () => {
  const maps = randomMaps(5, 4, 6, 21, 0.2);
  checkGradient(lossOf.iou({ tokens: [1, 3, 4] }), maps, { tol: 5e-3 });
  checkGradient(lossOf.iou({ tokens: [2, [4, 5]], form: "union", tau: 30 }), maps, { seed: 5 });
  checkGradient(lossOf.gsn({ tokens: [1, 3, 4] }), maps, { seed: 6, tol: 5e-3 });
  checkGradient(lossOf.gsn({ tokens: [2, 5], lambdaIou: 3, mean: false, tau: 30 }), maps, {
    seed: 7,
  });
});

Deno.test("GSN: (L_max + L_iou) / 2, the IoU dropped above the deactivation level", () => {
  const maps = randomMaps(5, 5, 6, 8, 0.2);
  const opts = { tokens: [1, 3] };
  const ae = attendExciteLoss(maps, opts).value;
  const io = iouLoss(maps, opts).value;
  const r = gsnLoss(maps, opts);
  near(r.value, (ae + io) / 2, 1e-12, "mean");
  near(r.max, ae, 0, "max part");
  near(r.iou, io, 0, "iou part");
  const summed = gsnLoss(maps, { ...opts, mean: false, lambdaMax: 2, deactivateIou: 10 });
  near(summed.value, 2 * ae + io, 1e-12, "sum");
  const off = gsnLoss(maps, { ...opts, deactivateIou: ae / 2 });
  assert.equal(off.iou, 0);
  near(off.value, ae / 2, 1e-12, "IoU deactivated");
});

Deno.test("A&E / IoU: bad input names the argument", () => {
  const maps = randomMaps(4, 4, 5, 1);
  throwsNaming(() => attendExciteLoss(maps, { tokens: [0] }), "tokens[0]");
  throwsNaming(() => attendExciteLoss(maps, { tokens: [1, 5] }), "tokens[1]");
  throwsNaming(() => attendExciteLoss(maps, { tokens: [] }), "tokens");
  throwsNaming(() => attendExciteLoss(maps, { tokens: [1, 4], last: 4 }), "tokens[1]");
  throwsNaming(() => attendExciteLoss(maps, { tokens: [1], last: 6 }), "last");
  throwsNaming(() => attendExciteLoss(maps, { tokens: [1], tau: 0 }), "tau");
  throwsNaming(() => attendExciteLoss(maps, { tokens: [1], kernelSize: 2 }), "kernelSize");
  throwsNaming(() => attendExciteLoss({ ...maps, size: [4, 3] }, { tokens: [1] }), "maps.cross");
  throwsNaming(() => iouLoss(maps, { tokens: [1, 2], form: "dice" as "sum" }), "form");
});
