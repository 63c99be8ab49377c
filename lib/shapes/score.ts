/**
 * Scoring a generated image of the shapes world against its prompt, as the ISAC paper's benchmark
 * does (appendix C.3, "Our benchmark: multi-class and multi-instance accuracy"), with the
 * detector of detect.ts in place of the paper's detector ensemble.
 *
 * Definitions (a target group is a class, a colour or none, and a count, as scene.ts's `Group`):
 * - An instance is *recognised* when its class fit `clsScore` is at least `minClsScore` (default
 *   0.6; below it the detector found a coloured blob it cannot call any class, e.g. a malformed
 *   shape or two touching objects read as one). Only recognised instances count.
 * - An instance *matches* a group when its class is the group's class and, if the group names a
 *   colour, its colour is that colour. Each instance is credited to at most one group: groups
 *   that name a colour take their matches first, then colourless groups take what is left.
 *   Separation is the detector's: touching objects of one colour are one instance, so a merged
 *   pair never counts twice.
 * - Multi-class accuracy (the paper: "cat and dog detected for a five-class prompt → 2/5"): the
 *   fraction of target groups credited with at least one instance.
 * - Multi-instance accuracy (the paper: "three cats detected for 'five cats' → 3/5"): credited
 *   instances over the target count, `min(found, n) / n`, summed over groups for mixed prompts.
 * - Exact count: every group credited with exactly its count, and no recognised instance of a
 *   target class left over (a fourth yellow heart, or a blue heart, for "three yellow hearts").
 *   The paper reports only the capped accuracies; exact count is the stricter reading.
 *
 * @module
 */
import { check } from "../errors.ts";
import type { Instance } from "./detect.ts";
import type { Group } from "./scene.ts";

/** Scoring options. */
export interface ScoreOptions {
  /** Instances with a class fit below this are not counted (default 0.6). */
  minClsScore?: number;
}

/** The default class-fit threshold. */
export const MIN_CLS_SCORE = 0.6;

/** What one target group got. */
export interface GroupScore {
  /** The target group. */
  group: Group;
  /** Instances credited to this group (at most `group.count`). */
  found: number;
  /** Matching instances left uncredited (beyond `group.count`). */
  surplus: number;
  /** At least one instance credited: the multi-class criterion. */
  present: boolean;
  /** Exactly `group.count` credited and no recognised instance of its class left over. */
  exact: boolean;
}

/** Scores of a whole prompt. */
export interface GroupsScore {
  /** Per target group, in the order given. */
  groups: GroupScore[];
  /** Multi-class accuracy: fraction of groups present. */
  classAccuracy: number;
  /** Multi-instance accuracy: Σ found / Σ count. */
  instanceAccuracy: number;
  /** Every group exact. */
  exact: boolean;
  /** Recognised instances of a target class not credited to any group. */
  extras: number;
  /** Recognised instances in all. */
  recognised: number;
}

/** What scoring reads of a detected instance. */
export type Scored = Pick<Instance, "cls" | "colour" | "clsScore">;

/** Scores detected instances against target groups: multi-class and multi-instance at once. */
export function scoreGroups(
  groups: readonly Group[],
  instances: readonly Scored[],
  opts: ScoreOptions = {},
): GroupsScore {
  check(groups.length > 0, "groups", "expected at least one target group");
  for (const [i, g] of groups.entries()) {
    check(
      Number.isInteger(g.count) && g.count >= 1,
      `groups[${i}].count`,
      `expected ≥ 1, got ${g.count}`,
    );
  }
  const min = opts.minClsScore ?? MIN_CLS_SCORE;
  const pool = instances.filter((d) => d.clsScore >= min);
  const used = new Array<boolean>(pool.length).fill(false);
  const found = new Array<number>(groups.length).fill(0);
  // Coloured groups first: a colourless group can use any colour, a coloured one cannot.
  const order = groups.map((_, i) => i).sort((a, b) =>
    Number(groups[a].colour === null) - Number(groups[b].colour === null)
  );
  const matches = (g: Group, d: Scored) =>
    d.cls === g.cls && (g.colour === null || d.colour === g.colour);
  for (const gi of order) {
    const g = groups[gi];
    pool.forEach((d, k) => {
      if (!used[k] && found[gi] < g.count && matches(g, d)) {
        found[gi]++;
        used[k] = true;
      }
    });
  }
  const leftover = (cls: string) => pool.filter((d, k) => !used[k] && d.cls === cls).length;
  const targetClasses = new Set(groups.map((g) => g.cls));
  const extras = [...targetClasses].reduce((s, c) => s + leftover(c), 0);
  const scores: GroupScore[] = groups.map((g, i) => ({
    group: g,
    found: found[i],
    surplus: pool.filter((d, k) => !used[k] && matches(g, d)).length,
    present: found[i] > 0,
    exact: found[i] === g.count && leftover(g.cls) === 0,
  }));
  const total = groups.reduce((s, g) => s + g.count, 0);
  return {
    groups: scores,
    classAccuracy: scores.filter((s) => s.present).length / groups.length,
    instanceAccuracy: found.reduce((s, f) => s + f, 0) / total,
    exact: scores.every((s) => s.exact),
    extras,
    recognised: pool.length,
  };
}

/**
 * Multi-class accuracy (ISAC appendix C.3): the fraction of target classes (with their colour,
 * when named) that some detected instance shows. `found[i]` tells whether group i was found.
 */
export function scoreMultiClass(
  groups: readonly Group[],
  instances: readonly Scored[],
  opts: ScoreOptions = {},
): { accuracy: number; found: boolean[] } {
  const s = scoreGroups(groups, instances, opts);
  return { accuracy: s.classAccuracy, found: s.groups.map((g) => g.present) };
}

/**
 * Multi-instance accuracy (ISAC appendix C.3) for one target group of n objects: min(found, n)/n
 * over separate matching instances, plus exact-count success (found = n, no extras of the class).
 */
export function scoreMultiInstance(
  group: Group,
  instances: readonly Scored[],
  opts: ScoreOptions = {},
): { accuracy: number; found: number; exact: boolean; extras: number } {
  const s = scoreGroups([group], instances, opts);
  return {
    accuracy: s.instanceAccuracy,
    found: s.groups[0].found,
    exact: s.exact,
    extras: s.extras,
  };
}
