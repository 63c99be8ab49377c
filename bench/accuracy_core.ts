/**
 * The benchmark's draws and shards (issue 11): which prompt seed is the validation draw (every
 * choice is made on it) and which is the test draw (reported once per configuration), and how a
 * run splits into `--shard i/n` pieces.
 *
 * The two draw seeds are new in issue 11: 2025 (the README's earlier figures) and the issue's
 * "fresh draw" have been looked at, so neither is used for a choice or a report here.
 *
 * @module
 */
import { AttnkitError } from "../lib/errors.ts";

/** The prompt seeds of the named draws. */
export const DRAWS: Readonly<Record<"validation" | "test", number>> = {
  validation: 7001,
  test: 9001,
};

/**
 * The prompt seed of a draw name ("validation", "test") or of a plain integer.
 *
 * @example
 * ```ts
 * drawSeed("test"); // 9001
 * ```
 */
export function drawSeed(draw: string): number {
  if (draw === "validation" || draw === "test") return DRAWS[draw];
  const x = Number(draw);
  if (!Number.isInteger(x)) {
    throw new AttnkitError("--draw", `expected validation, test or an integer seed, got "${draw}"`);
  }
  return x;
}

/** One shard of a run: work unit u belongs to shard `u mod count`. */
export interface Shard {
  /** 0-based shard index. */
  index: number;
  /** Number of shards. */
  count: number;
}

/**
 * Parses `--shard i/n` (1-based i as users and job arrays write it: 1/2, 2/2); undefined → 1/1.
 *
 * @example
 * ```ts
 * parseShard("2/4"); // { index: 1, count: 4 }
 * ```
 */
export function parseShard(v: string | undefined): Shard {
  if (v === undefined) return { index: 0, count: 1 };
  const m = /^(\d+)\/(\d+)$/.exec(v.trim());
  const i = m ? Number(m[1]) : NaN;
  const n = m ? Number(m[2]) : NaN;
  if (!(n >= 1 && i >= 1 && i <= n)) {
    throw new AttnkitError("--shard", `expected i/n with 1 ≤ i ≤ n, got "${v}"`);
  }
  return { index: i - 1, count: n };
}
