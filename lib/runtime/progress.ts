/**
 * Progress of a long run, reported only when the caller asks: to a callback, and/or as a one-line
 * bar on stderr. Library functions never write to stderr on their own; a caller turns the bar on
 * (examples do so when stderr is a terminal).
 *
 * @module
 */

/** Reports progress `done` of `total`; `finish` ends the line. */
export interface Progress {
  /** Records that `done` units are complete, with an optional note shown after the count. */
  update(done: number, note?: string): void;
  /** Ends the progress line. */
  finish(): void;
}

/** Called with the units done so far, the total and an optional note. */
export type StepProgressCallback = (done: number, total: number, note?: string) => void;

/**
 * A step-count progress reporter labelled `label`: calls `onProgress` on every update, and draws a
 * bar on stderr only when `bar` is true (never by default).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { stepProgress } from "./progress.ts";
 * const seen: number[] = [];
 * const p = stepProgress("sampling", 2, { onProgress: (done) => seen.push(done) });
 * p.update(1);
 * p.update(2);
 * p.finish();
 * assert(seen.join() === "1,2");
 * ```
 */
export function stepProgress(
  label: string,
  total: number,
  opts: { bar?: boolean; onProgress?: StepProgressCallback } = {},
): Progress {
  const on = opts.bar === true;
  const cb = opts.onProgress;
  const enc = new TextEncoder();
  const t0 = performance.now();
  let last = 0;
  return {
    update(done: number, note = "") {
      cb?.(done, total, note);
      if (!on) return;
      const now = performance.now();
      if (done < total && now - last < 100) return;
      last = now;
      const w = 24;
      const fill = Math.round((done / total) * w);
      const secs = ((now - t0) / 1000).toFixed(1);
      const line = `\r${label} [${"#".repeat(fill)}${
        ".".repeat(w - fill)
      }] ${done}/${total} ${secs}s ${note}`;
      Deno.stderr.writeSync(enc.encode(line));
    },
    finish() {
      if (on) Deno.stderr.writeSync(enc.encode("\n"));
    },
  };
}
