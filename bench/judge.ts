/**
 * The benchmark's judgement of one image: every metric issue 11 asks for, from the detector's
 * instances (lib/shapes/detect.ts) and the prompt's target groups, plus a failure taxonomy.
 *
 * Metrics (all from lib/shapes/score.ts's `scoreGroups`, instances with class fit ≥ 0.6):
 * - `classOnly`: fraction of target classes present, colour ignored (the ISAC paper's
 *   multi-class accuracy: "cat and dog detected for a five-class prompt → 2/5");
 * - `classColour`: fraction of (class, colour) targets present (adds attribute binding);
 * - `imageClassOnly`, `imageClassColour`: every target present (exact image accuracy, the
 *   "detector finds the prompt" label of the verifier diagnostics);
 * - `instanceCapped`: Σ min(found, n) / Σ n, colour ignored (the paper's multi-instance);
 * - `instanceColour`: the same with colours; `exact`: every count exact with colours and no extra
 *   instance of a target class.
 *
 * Taxonomy: each requested object not credited (class and colour) is put in the first kind that
 * explains it, consuming the instance that explains it: `wrongColour` (a recognised instance of
 * its class in another colour), `wrongClass` (a recognised instance of its colour but another
 * class), `merged` (a blob of its colour the detector cannot call any class: touching objects or
 * a malformed one), else `missing`. `extra`: recognised instances of a target class that no
 * target and no failure above accounts for (beyond the counts).
 *
 * @module
 */
import { MIN_CLS_SCORE, type Scored, scoreGroups } from "../lib/shapes/score.ts";
import type { Group } from "../lib/shapes/scene.ts";

/** Failure counts of one image (requested objects, except `extra`). */
export interface Taxonomy {
  /** Requested objects (Σ counts). */
  units: number;
  /** Nothing of its class or colour where it should be. */
  missing: number;
  /** An unrecognisable blob of its colour. */
  merged: number;
  /** Its colour, another class. */
  wrongClass: number;
  /** Its class, another colour. */
  wrongColour: number;
  /** Recognised instances of a target class beyond the counts. */
  extra: number;
}

/** Every metric of one image. */
export interface Judgement {
  classOnly: number;
  classColour: number;
  imageClassOnly: boolean;
  imageClassColour: boolean;
  instanceCapped: number;
  instanceColour: number;
  exact: boolean;
  taxonomy: Taxonomy;
}

/** The failure kinds, in the taxonomy's priority order. */
export const FAILURE_KINDS = ["wrongColour", "wrongClass", "merged", "missing", "extra"] as const;

/** Judges detected instances against a prompt's groups; see the module doc. */
export function judgeImage(groups: readonly Group[], found: readonly Scored[]): Judgement {
  const withColour = scoreGroups(groups, found);
  const plain = scoreGroups(groups.map((g) => ({ ...g, colour: null })), found);
  const recognised = found.filter((d) => d.clsScore >= MIN_CLS_SCORE);
  const blobs = found.filter((d) => d.clsScore < MIN_CLS_SCORE);
  // Which recognised instances scoreGroups credited: recompute its greedy matching.
  const used = new Array<boolean>(recognised.length).fill(false);
  const order = groups.map((_, i) => i).sort((a, b) =>
    Number(groups[a].colour === null) - Number(groups[b].colour === null)
  );
  const credited = new Array<number>(groups.length).fill(0);
  for (const gi of order) {
    const g = groups[gi];
    recognised.forEach((d, k) => {
      if (
        !used[k] && credited[gi] < g.count && d.cls === g.cls &&
        (g.colour === null || d.colour === g.colour)
      ) {
        credited[gi]++;
        used[k] = true;
      }
    });
  }
  const blobUsed = new Array<boolean>(blobs.length).fill(false);
  const t: Taxonomy = {
    units: groups.reduce((s, g) => s + g.count, 0),
    missing: 0,
    merged: 0,
    wrongClass: 0,
    wrongColour: 0,
    extra: 0,
  };
  const take = (pool: readonly Scored[], usedOf: boolean[], ok: (d: Scored) => boolean) => {
    const k = pool.findIndex((d, i) => !usedOf[i] && ok(d));
    if (k < 0) return false;
    usedOf[k] = true;
    return true;
  };
  for (const [gi, g] of groups.entries()) {
    for (let u = credited[gi]; u < g.count; u++) {
      if (take(recognised, used, (d) => d.cls === g.cls && d.colour !== g.colour)) {
        t.wrongColour++;
      } else if (
        g.colour !== null && take(recognised, used, (d) => d.colour === g.colour && d.cls !== g.cls)
      ) t.wrongClass++;
      else if (take(blobs, blobUsed, (d) => g.colour === null || d.colour === g.colour)) {
        t.merged++;
      } else t.missing++;
    }
  }
  // Extras: recognised instances of a target class that neither a target nor a failure above
  // accounts for (a wrong-colour instance is a failure of its target, not an extra as well).
  const targetClasses = new Set(groups.map((gr) => gr.cls));
  t.extra = recognised.filter((d, k) => !used[k] && targetClasses.has(d.cls)).length;
  return {
    classOnly: plain.classAccuracy,
    classColour: withColour.classAccuracy,
    imageClassOnly: plain.groups.every((s) => s.present) &&
      plain.groups.every((s) => s.found === s.group.count),
    imageClassColour: withColour.groups.every((s) => s.found === s.group.count),
    instanceCapped: plain.instanceAccuracy,
    instanceColour: withColour.instanceAccuracy,
    exact: withColour.exact,
    taxonomy: t,
  };
}
