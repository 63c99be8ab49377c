/**
 * A WGSL building block for workgroup tree reductions: the levels of a 256-wide reduction
 * written out one by one (sequential addressing, one barrier per level) rather than as a loop.
 * Mesa's software adapter takes minutes to compile workgroup-memory accesses inside loops it
 * cannot unroll, and the written-out form is what a GPU compiler would unroll to anyway.
 *
 * @module
 */

/** Invocations per workgroup of every reduction kernel. */
export const REDUCE_WIDTH = 256;

/**
 * The reduction levels for `REDUCE_WIDTH` invocations: for each stride s = 128, 64, …, 1, the
 * statement `combine(s)` guarded by `li < s`, each followed by a barrier. `combine` receives the
 * stride as a WGSL u32 literal and should merge slot `li + s` into slot `li`.
 */
export function treeLevels(combine: (stride: string) => string): string {
  const lines: string[] = [];
  for (let s = REDUCE_WIDTH / 2; s >= 1; s /= 2) {
    lines.push(`  if (li < ${s}u) { ${combine(`${s}u`)} }`, "  workgroupBarrier();");
  }
  return lines.join("\n");
}
