/**
 * Shared pieces of the grounding tests: the PyTorch fixture (tests/fixtures/
 * make_grounding_fixtures.py) and its packed 0/1 masks.
 *
 * @module
 */
import fixture from "./fixtures/grounding/grounding.json" with { type: "json" };

export { fixture };

/** Unpacks a hex string of 0/1 values (4 per character, most significant first) to `n` values. */
export function unhex(hex: string, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const nib = parseInt(hex[i >> 2], 16);
    out[i] = (nib >> (3 - (i & 3))) & 1;
  }
  return out;
}

/** Largest absolute difference of two equally long arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
