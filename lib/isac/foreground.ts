/**
 * ISAC's global foreground mask: the union of the binarised masks of the target tokens' columns
 * (Section 5.1, after Eq. 4), as the ascending list of pixel indices I of Eq. 5.
 *
 * @module
 */
import { check } from "../errors.ts";

/**
 * Pixels (ascending) where any of the `tokens` columns of the row-major `[rows, cols]` binary map
 * `bin` is set. Throws an `AttnkitError` naming `tokens` for an index outside `0 … cols − 1`.
 */
export function foregroundIndices(
  bin: Uint8Array,
  rows: number,
  cols: number,
  tokens: readonly number[],
): Int32Array {
  check(
    Number.isInteger(rows) && Number.isInteger(cols) && rows >= 0 && cols >= 0,
    "rows",
    `expected non-negative integer rows and cols, got ${rows} and ${cols}`,
  );
  check(
    bin.length === rows * cols,
    "bin",
    () => `expected ${rows} x ${cols} = ${rows * cols} entries, got ${bin.length}`,
  );
  for (const t of tokens) {
    check(
      Number.isInteger(t) && t >= 0 && t < cols,
      "tokens",
      () => `expected token columns in 0 … ${cols - 1} (L = ${cols}), got [${tokens.join(", ")}]`,
    );
  }
  const picked: number[] = [];
  for (let i = 0; i < rows; i++) {
    for (const t of tokens) {
      if (bin[i * cols + t]) {
        picked.push(i);
        break;
      }
    }
  }
  return Int32Array.from(picked);
}
