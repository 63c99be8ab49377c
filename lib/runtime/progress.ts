/**
 * A one-line progress bar on stderr for long runs; silent when stderr is not a terminal unless
 * forced, so logs and CI output stay clean.
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

/** A step-count progress bar labelled `label`; `force` prints even when stderr is not a terminal. */
export function stepProgress(label: string, total: number, force = false): Progress {
  const on = force || Deno.stderr.isTerminal();
  const enc = new TextEncoder();
  const t0 = performance.now();
  let last = 0;
  return {
    update(done: number, note = "") {
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
