/**
 * bench/verifier.ts's pure analysis on hand-built records: the score is −Σ_t of the scheduled
 * terms, AUCs count the right pairs, and selection picks the lowest loss.
 */
import assert from "node:assert/strict";
import {
  aucOf,
  candidateScore,
  selectionGain,
  selectionTrials,
  type VerifierRecord,
} from "../bench/verifier.ts";
import { judgeImage } from "../bench/judge.ts";
import type { Group } from "../lib/shapes/scene.ts";

const groups = [{ cls: "circle", colour: "red", count: 1 }, {
  cls: "star",
  colour: "blue",
  count: 1,
}] as Group[];
const full = judgeImage(groups, [
  { cls: "circle", colour: "red", clsScore: 0.9 },
  { cls: "star", colour: "blue", clsScore: 0.9 },
]);
const half = judgeImage(groups, [{ cls: "circle", colour: "red", clsScore: 0.9 }]);

/** Two steps (t = 750, 250 of T = 1000); candidate c has L_ins = ins[c], L_cls = cls[c] at both. */
function record(
  item: number,
  k: number,
  ins: number[],
  cls: number[],
  good: boolean[],
): VerifierRecord {
  return {
    item,
    setting: "multi-class",
    k,
    prompt: "p",
    seed: 0,
    timesteps: [750, 250],
    trainSteps: 1000,
    candidates: ins.map((_, c) => ({
      index: c,
      terms: { v: { ins: [ins[c], ins[c]], cls: [cls[c], cls[c]] } },
      judgement: good[c] ? full : half,
    })),
  };
}

Deno.test("verifier: the score is −Σ_t (λ_ins L_ins + λ_cls L_cls) under the schedule", () => {
  const r = record(0, 2, [0.2], [0.6], [true]);
  // G soft: (0.75, 0.25) then (0.25, 0.75).
  const g = -(0.75 * 0.2 + 0.25 * 0.6 + 0.25 * 0.2 + 0.75 * 0.6);
  assert.ok(Math.abs(candidateScore(r, r.candidates[0], "v", "G soft (ins→cls)") - g) < 1e-12);
  assert.ok(
    Math.abs(candidateScore(r, r.candidates[0], "v", "B L_cls only", "late") + 0.6) < 1e-12,
  );
});

Deno.test("verifier: AUCs and selection on records where lower loss means found", () => {
  const recs = [
    record(0, 2, [0, 0], [0.1, 0.9], [true, false]),
    record(1, 2, [0, 0], [0.2, 0.8], [false, true]), // here the loss points the wrong way
    record(2, 3, [0, 0], [0.3, 0.4], [true, false]),
  ];
  const a = aucOf(recs, (r, c) => candidateScore(r, c, "v", "B L_cls only"), "found");
  assert.equal(a.within.value, 2 / 3);
  assert.equal(a.samples, 6);
  assert.equal(a.positives, 3);
  // Pooled: positives −0.2, −1.6, −0.6 (×2 steps) vs negatives −1.8, −0.4, −0.8.
  // −0.2 beats all three, −1.6 beats −1.8, −0.6 beats −1.8 and −0.8: 6 of 9 pairs.
  assert.equal(a.pooled.value, 6 / 9);
  const picks = selectionTrials(recs, "isac-sel", "v", "B L_cls only");
  assert.deepEqual(picks.map((t) => t.note), [
    "picked candidate 0",
    "picked candidate 0",
    "picked candidate 0",
  ]);
  const gain = selectionGain(
    recs,
    (r, c) => candidateScore(r, c, "v", "B L_cls only"),
    (j) => j.classOnly,
  );
  // Base = candidate 0 everywhere, so selection changes nothing; the oracle finds all three.
  assert.equal(gain.diff.value, 0);
  assert.equal(gain.oracle.value, 1);
});
